"""Resume states: written with tensors and plain values only, read with torch.load(weights_only=True), so a tampered one runs nothing."""

import os
import subprocess
import sys

import pytest
import torch

from tests.train_helpers import TINY_ARGS, tiny_config, write_image_folder
from training.cli import launch as train_launch
from training.cli import resume_source
from training.run import resume as run_resume
from tests import limits

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def data16(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp('data') / 'tiny16', num_images=4, resolution=16)


@pytest.fixture(scope='module')
def finished_run(tmp_path_factory, data16):
    outdir = tmp_path_factory.mktemp('runs')
    return train_launch.start(tiny_config(outdir, data16, kimg=0.004, aug='ada'), env={})


def test_resume_state_loads_with_plain_weights_only_torch_load(finished_run):
    state = torch.load(os.path.join(finished_run, 'network-snapshot-000000.resume.pt'), weights_only=True)
    assert state['format'] == run_resume.RESUME_FORMAT and state['ada'] is not None
    assert isinstance(state['rng'][0]['numpy'][1], torch.Tensor)


class _Payload:
    """Unpickling this creates `marker` (through io.open), which a safe loader must never do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def _tampered_copy(finished_run, tmp_path):
    """A run directory whose snapshot is genuine and whose resume state carries a payload."""
    run_dir = tmp_path / 'runs' / '00000-tampered'
    run_dir.mkdir(parents=True)
    (run_dir / 'training_options.json').write_text('{}')
    pkl = run_dir / 'network-snapshot-000000.pkl'
    pkl.write_bytes(open(os.path.join(finished_run, 'network-snapshot-000000.pkl'), 'rb').read())
    marker = tmp_path / 'payload-ran'
    state = torch.load(os.path.join(finished_run, 'network-snapshot-000000.resume.pt'), weights_only=True)
    state['loss'] = _Payload(str(marker))
    torch.save(state, run_resume.resume_state_path(str(pkl)))
    return str(pkl), marker


@pytest.mark.parametrize('resume', ['path', 'latest'])
def test_tampered_resume_state_is_refused_in_one_line_and_runs_nothing(finished_run, data16, tmp_path, resume):
    pkl, marker = _tampered_copy(finished_run, tmp_path)
    value = pkl if resume == 'path' else 'latest'
    result = subprocess.run([sys.executable, 'train.py', f'--outdir={tmp_path / "runs"}', f'--data={data16}',
                             *TINY_ARGS, f'--resume={value}'], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=limits.seconds(300), env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith('Error:')]
    assert len(errors) == 1 and 'refusing to load io.open' in errors[0] and 'resume.pt' in errors[0]
    assert not marker.exists()


def _half_replaced_pair(tmp_path, data16):
    """Two runs under one outdir; in the newer one the pickle was replaced after its resume state was written."""
    outdir = tmp_path / 'runs'
    older = train_launch.start(tiny_config(outdir, data16, kimg=0.004), env={})
    newer = train_launch.start(tiny_config(outdir, data16, kimg=0.004, seed=1), env={})
    other = train_launch.start(tiny_config(tmp_path / 'other', data16, kimg=0.004, seed=2), env={})
    name = 'network-snapshot-000000.pkl'
    with open(os.path.join(other, name), 'rb') as src, open(os.path.join(newer, name), 'wb') as dst:
        dst.write(src.read())
    return str(outdir), os.path.join(older, name), os.path.join(newer, name)


def test_resume_latest_skips_a_half_replaced_pair_for_the_previous_complete_one(tmp_path, data16):
    outdir, older, newer = _half_replaced_pair(tmp_path, data16)
    said = []
    assert resume_source.find_latest_snapshot(outdir, log=said.append) == older
    assert len(said) == 1 and newer in said[0] and 'another version of the pickle' in said[0]


def test_resume_path_of_a_half_replaced_pair_is_refused_in_one_line(tmp_path, data16):
    _outdir, _older, newer = _half_replaced_pair(tmp_path, data16)
    result = subprocess.run([sys.executable, 'train.py', f'--outdir={tmp_path / "runs"}', f'--data={data16}',
                             *TINY_ARGS, f'--resume={newer}'], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=limits.seconds(300), env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith('Error:')]
    assert len(errors) == 1 and 'written for another version of the pickle' in errors[0]


def test_next_run_removes_temp_files_of_killed_writes_but_not_those_of_a_live_run(tmp_path, data16, capsys):
    from training.cli import run_dir as run_dirs  # pylint: disable=import-outside-toplevel
    outdir = tmp_path / 'runs'
    dead, live = outdir / '00000-killed', outdir / '00001-live'
    leftover = '.network-snapshot-000000.pkl.squeezegan-abc12_yz.tmp'  # As dnnlib.util.atomic_write names them.
    for run_dir in (dead, live):
        run_dir.mkdir(parents=True)
        (run_dir / 'training_options.json').write_text('{}')
        (run_dir / leftover).write_bytes(b'half a pickle')
        (run_dir / 'network-snapshot-000000.pkl').write_bytes(b'a complete file stays')
    with run_dirs.run_lock(str(live)):  # As a training process holds it while it runs.
        new_run = train_launch.start(tiny_config(outdir, data16, kimg=0.004), env={})
    assert sorted(os.listdir(dead)) == ['network-snapshot-000000.pkl', 'training_options.json']
    assert leftover in os.listdir(live)
    assert f'Removed {dead / leftover}' in capsys.readouterr().out
    assert os.path.basename(new_run).startswith('00002-')


def test_a_users_files_beside_runs_are_never_touched_nor_counted_as_runs(tmp_path, data16):
    outdir = tmp_path / 'runs'
    user_files = {
        '2024-holiday/.notes.tmp': b'my notes',                               # Digits and a dash, but not a run.
        '00042-ideas/.draft.squeezegan-abc12_yz.tmp': b'not a run either',     # No training_options.json.
        '00003-old/training_options.json': b'{}',                              # A run (stylegan2-ada-pytorch's too)...
        '00003-old/.notes.tmp': b'my notes in a run',                          # ...with a file we did not write.
        '00003-old/.draft.tmp': b'x',
    }
    for name, data in user_files.items():
        (outdir / name).parent.mkdir(parents=True, exist_ok=True)
        (outdir / name).write_bytes(data)
    new_run = train_launch.start(tiny_config(outdir, data16, kimg=0.004), env={})
    assert os.path.basename(new_run).startswith('00004-')  # After run 3; 2024 and 42 are not runs.
    for name, data in user_files.items():
        assert (outdir / name).read_bytes() == data, name


def test_keep_snapshots_deletes_older_pairs_only_after_a_newer_one_is_complete(tmp_path, data16):
    config = tiny_config(tmp_path / 'runs', data16, kimg=0.02, tick=0.004, snap=1, keep_snapshots=2)
    run_dir = train_launch.start(config, env={})
    pickles = sorted(f for f in os.listdir(run_dir) if f.endswith('.pkl'))
    states = sorted(f for f in os.listdir(run_dir) if f.endswith('.resume.pt'))
    assert len(pickles) == 2 and [p[:-len('.pkl')] for p in pickles] == [s[:-len('.resume.pt')] for s in states]
    assert 'network-snapshot-000000_020img.pkl' in pickles  # The newest (kimg 0.02) survives.
    log = open(os.path.join(run_dir, 'log.txt')).read()
    assert log.count('(--keep-snapshots=2)') >= 3
    assert resume_source.find_latest_snapshot(str(tmp_path / 'runs')).endswith('network-snapshot-000000_020img.pkl')
