"""A resume state that loads safely but is wrong is refused, naming the file and the first bad field, before anything
is restored: missing keys, wrong types, counters that are negative or NaN, optimizer state of other shapes,
garbage RNG states."""

import copy
import os
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

import train

from tests.train_helpers import TINY_ARGS, tiny_config, write_image_folder
from training import training_loop
from training.cli import launch as train_launch
from training.cli import resume_source
from training.run import resume as run_resume
from training.run.resume_check import StateError, check_resume_state
from tests import limits

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def data16(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp('data') / 'tiny16', num_images=4, resolution=16)


@pytest.fixture(scope='module')
def genuine(tmp_path_factory, data16):
    """(a finished run's resume state, the optimizers of a run configured alike)."""
    outdir = tmp_path_factory.mktemp('runs')
    config = tiny_config(outdir, data16, kimg=0.004, aug='ada')
    run_dir = train_launch.start(config, env={})
    state = run_resume.load_resume_state(os.path.join(run_dir, 'network-snapshot-000000.resume.pt'))
    run = training_loop.build_run(dict(config, run_dir=None))
    run.preemption.uninstall()
    return state, run.optimizers


def _set(state, path, value):
    """state with the field at `path` (keys and indices) replaced by `value`, or deleted when value is _DELETE."""
    state = copy.deepcopy(state)
    *parents, last = path
    target = state
    for key in parents:
        target = target[key]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return state


_DELETE = object()


def test_a_genuine_state_passes(genuine):
    state, opts = genuine
    check_resume_state(state, opts)


@pytest.mark.parametrize('path, value, message', [
    (['progress'], _DELETE, 'progress: missing'),
    (['progress', 'cur_nimg'], float('nan'), 'progress.cur_nimg: nan, expected a whole number >= 0'),
    (['progress', 'cur_nimg'], -1, 'progress.cur_nimg: -1, expected a whole number >= 0'),
    (['progress', 'cur_nimg'], '12', "progress.cur_nimg: '12', expected a whole number >= 0"),
    (['progress', 'batch_idx'], 2.5, 'progress.batch_idx: 2.5, expected a whole number >= 0'),
    (['progress', 'tick_start_nimg'], 10 ** 9, 'progress.tick_start_nimg: 1000000000 is past cur_nimg'),
    (['optimizers', 'D'], _DELETE, 'optimizers.D: missing'),
    (['optimizers', 'G', 'state', 0, 'exp_avg'], torch.zeros([3]), 'optimizers.G.state[0].exp_avg: shape [3], but the parameter is'),
    (['optimizers', 'G', 'state', 0, 'exp_avg_sq'], 'zeros', 'optimizers.G.state[0].exp_avg_sq: a str, expected a tensor'),
    (['optimizers', 'G', 'state', 10 ** 6], {}, 'optimizers.G.state[1000000]: names no parameter of the optimizer'),
    (['optimizers', 'G', 'param_groups'], [], 'optimizers.G.param_groups: 0 entries, expected 1'),
    (['loss', 'pl_mean'], 'big', "loss.pl_mean: 'big', expected a number"),
    (['loss', 'pl_mean'], torch.tensor(float('inf')), 'loss.pl_mean: inf, expected a finite number'),
    (['ada', 'p'], 1.5, 'ada.p: 1.5, expected a probability in [0, 1]'),
    (['ada', 'sign_count'], -3, 'ada.sign_count: -3, expected a whole number >= 0'),
    (['rng'], [], 'rng: 0 entries, expected at least 1'),
    (['rng', 0, 'torch'], torch.zeros([7], dtype=torch.uint8), 'rng[0].torch: 7 bytes, a CPU generator state has'),
    (['rng', 0, 'torch'], [1, 2, 3], 'rng[0].torch: expected a 1-D uint8 tensor'),
    (['rng', 0, 'numpy'], ('MT19937', torch.zeros([5]), 0, 0, 0.0), 'rng[0].numpy: the key must hold 624 numbers'),
    (['rng', 0, 'numpy'], 'seed', "rng[0].numpy: expected numpy's ('MT19937', key, pos, has_gauss, cached_gaussian)"),
    (['rng', 0, 'numpy', 2], 10 ** 6, 'rng[0].numpy: position 1000000, expected an integer in [0, 624]'),
    (['ranks'], [{}, {}], 'ranks: 2 entries, expected 1'),
    (['ranks', 0, 'loss'], {'pl_mean': float('nan')}, 'ranks[0].loss.pl_mean: nan, expected a finite number'),
])
def test_each_bad_field_is_named(genuine, path, value, message):
    state, opts = genuine
    if path[:2] == ['rng', 0] and path[2:] == ['numpy', 2]:  # A tuple: replace it whole.
        numpy_state = list(state['rng'][0]['numpy'])
        numpy_state[2] = value
        path, value = ['rng', 0, 'numpy'], tuple(numpy_state)
    with pytest.raises(StateError) as info:
        check_resume_state(_set(state, path, value), opts)
    assert str(info.value).startswith(message), str(info.value)


def _write_bad_state(run_dir, path, value):
    state_file = os.path.join(run_dir, 'network-snapshot-000000.resume.pt')
    state = torch.load(state_file, weights_only=True)
    torch.save(_set(state, path, value), state_file)
    return state_file


@pytest.mark.parametrize('path, value, field', [
    (['progress', 'cur_nimg'], float('nan'), 'progress.cur_nimg: nan'),   # Used to hang, ignoring SIGTERM.
    (['progress', 'cur_nimg'], -1, 'progress.cur_nimg: -1'),              # Used to write network-snapshot--00001.pkl.
    (['optimizers'], _DELETE, 'optimizers: missing'),                       # Used to be a KeyError traceback.
])
def test_train_refuses_a_bad_state_in_one_line_and_changes_nothing(tmp_path, data16, path, value, field):
    outdir = tmp_path / 'runs'
    first = CliRunner().invoke(train.main, [f'--outdir={outdir}', f'--data={data16}', *TINY_ARGS, '--kimg=0.004'])
    assert first.exit_code == 0, first.output
    run_dir = os.path.join(outdir, os.listdir(outdir)[0])
    state_file = _write_bad_state(run_dir, path, value)
    before = {name: open(os.path.join(run_dir, name), 'rb').read() for name in os.listdir(run_dir)}
    result = subprocess.run([sys.executable, 'train.py', f'--outdir={outdir}', f'--data={data16}', *TINY_ARGS,
                             '--resume=latest'], cwd=REPO_ROOT, capture_output=True, text=True, timeout=limits.seconds(120),
                            env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.returncode == 1 and 'Traceback' not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith('Error:')]
    assert len(errors) == 1 and errors[0].startswith(f'Error: --resume: {state_file}: {field}'), errors
    assert {name: open(os.path.join(run_dir, name), 'rb').read() for name in os.listdir(run_dir)} == before
    assert sorted(os.listdir(outdir)) == [os.path.basename(run_dir)]  # The refused run left no folder.


def test_resume_says_once_whether_rng_states_were_restored_and_kimg_is_the_total(tmp_path, data16):
    outdir = tmp_path / 'runs'
    first = CliRunner().invoke(train.main, [f'--outdir={outdir}', f'--data={data16}', *TINY_ARGS, '--kimg=0.008'])
    assert first.exit_code == 0, first.output
    resumed = CliRunner().invoke(train.main, [f'--outdir={outdir}', f'--data={data16}', *TINY_ARGS, '--kimg=0.012',
                                              '--resume=latest'])
    assert resumed.exit_code == 0, resumed.output
    lines = resumed.output.splitlines()
    assert sum('RNG states' in line for line in lines) == 1 and '  RNG states restored' in lines
    runs = sorted(os.listdir(outdir))
    for kimg in ('0.012', '0.004'):  # Reached, and below what was reached: nothing to train, nothing made.
        refused = CliRunner().invoke(train.main, [f'--outdir={outdir}', f'--data={data16}', *TINY_ARGS,
                                                  f'--kimg={kimg}', '--resume=latest'])
        assert refused.exit_code == 1
        assert [line for line in refused.output.splitlines() if line.startswith('Error:')][0].endswith(
            f'this run is at 0.012 kimg, and --kimg={float(kimg):g} is the total to reach, not more to add; pass a '
            f'larger --kimg to train on')
        assert sorted(os.listdir(outdir)) == runs


@pytest.mark.parametrize('seed', ['-1', str(2 ** 32)])
def test_seed_outside_32_bits_is_one_line(tmp_path, data16, seed):
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', f'--data={data16}', *TINY_ARGS,
                                             f'--seed={seed}', '--dry-run'])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)  # Not an uncaught exception.
    assert f'--seed={seed}: must be a whole number from 0 to 4294967295' in result.output


def test_resume_lists_every_option_that_differs_old_to_new(tmp_path, data16):
    outdir = tmp_path / 'runs'
    first = CliRunner().invoke(train.main, [f'--outdir={outdir}', f'--data={data16}', *TINY_ARGS, '--kimg=0.004',
                                            '--gamma=1'])
    assert first.exit_code == 0, first.output
    resumed = CliRunner().invoke(train.main, [f'--outdir={outdir}', f'--data={data16}', *TINY_ARGS, '--kimg=0.008',
                                              '--gamma=2', '--aug=fixed', '--p=0.2', '--metrics=none', '--snap=3',
                                              '--resume=latest'])
    assert resumed.exit_code == 0, resumed.output
    notices = [line for line in resumed.output.splitlines() if line.startswith('Options that differ from the resumed run')]
    assert len(notices) == 1
    listed = notices[0].split('old -> new: ', 1)[1].split('; ')
    assert 'loss_kwargs.r1_gamma: 1.0 -> 2.0' in listed
    assert 'augment_p: 0.0 -> 0.2' in listed and any(item.startswith('augment_kwargs: null -> {') for item in listed)
    assert not any(item.startswith(('network_snapshot_ticks', 'total_kimg', 'run_dir', 'metrics')) for item in listed)
    log = (sorted(outdir.iterdir())[-1] / 'log.txt').read_text()
    assert notices[0] in log.splitlines()  # The run's log keeps what the resume changed.


def test_resume_latest_skips_odd_names_and_stray_files_in_run_folders(tmp_path):
    run_dir = tmp_path / 'runs' / '00000-run'
    run_dir.mkdir(parents=True)
    (run_dir / 'training_options.json').write_text('{}')
    for name in ('network-snapshot-snapshot.pkl', 'network-snapshot-snapshot.resume.pt',   # Not a number.
                 'network-snapshot-000009.pkl.bak', 'network-snapshot-000009.resume.pt',    # A backup, no pickle.
                 'network-snapshot-00000x.pkl', 'notes.txt', 'network-snapshot-000002.pkl',  # No resume state.
                 'network-snapshot-000001.pkl', 'network-snapshot-000001.resume.pt'):
        (run_dir / name).write_bytes(b'')
    (run_dir / 'network-snapshot-000005.pkl').mkdir()  # A folder named like a snapshot.
    (run_dir / 'network-snapshot-000005.resume.pt').write_bytes(b'')
    assert resume_source.find_latest_snapshot(str(tmp_path / 'runs'), log=lambda text: None) == \
        str(run_dir / 'network-snapshot-000001.pkl')
