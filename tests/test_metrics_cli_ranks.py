"""calc_metrics.py --gpus=N as separate processes (gloo on CPU, --device=cpu): the result of one process, and every
way the ranks end (an error a user can act on, a crash, a signal) in one line, with no rank or scratch left."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from tests import limits
from tests import metrics_helpers as helpers
from tests.test_metrics_cli import write_snapshot
from tests.test_train_preemption import _alive, _children, _scratch_left

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Loaded by every Python process of a run whose PYTHONPATH starts with its folder, spawned ranks included: with
# FAULT set, rank 1 of a process group crashes when it starts on the generated images.
CRASH_IN_RANK_1 = textwrap.dedent('''
    import os
    if os.environ.get('SQUEEZEGAN_TEST_METRICS_FAULT'):
        import torch
        from metrics import metric_utils
        original = metric_utils.compute_feature_stats_for_generator

        def crash_in_rank_1(*args, **kwargs):
            if torch.distributed.is_initialized() and torch.distributed.get_rank() == 1:
                raise RuntimeError('injected fault in rank 1')
            return original(*args, **kwargs)
        metric_utils.compute_feature_stats_for_generator = crash_in_rank_1
''')


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp('inputs')
    return dict(real=helpers.write_image_folder(folder / 'real', num_images=11, seed=0).path,
                fake=helpers.write_image_folder(folder / 'fake', num_images=9, seed=1).path,
                detectors=helpers.write_detector_dir(folder / 'detectors'),
                snapshot=write_snapshot(folder / 'net' / 'network-snapshot-000000.pkl', G=helpers.real_tiny_generator()))


def _start(tmp_path, *args, env=None):
    """calc_metrics.py with its own TMPDIR and dnnlib cache, one thread per process."""
    os.makedirs(tmp_path / 'tmp', exist_ok=True)
    env = dict(os.environ if env is None else env, TMPDIR=str(tmp_path / 'tmp'), OMP_NUM_THREADS='1',
               DNNLIB_CACHE_DIR=str(tmp_path / 'cache'))
    return subprocess.Popen([sys.executable, 'calc_metrics.py', '--device=cpu', *[str(arg) for arg in args]],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc):
    out, err = proc.communicate(timeout=limits.seconds(240))
    return proc.returncode, out, err


def _one_error_line(code, out, err):
    """The run failed with exactly one 'Error: ' line and no traceback; returns the line."""
    assert code == 1, (code, out, err[-3000:])
    lines = [line for line in err.splitlines() if line.startswith('Error: ')]
    assert len(lines) == 1 and 'Traceback' not in err, err[-3000:]
    return lines[0]


def _results(out):
    return {key: value for line in out.splitlines() if line.startswith('{')
            for key, value in json.loads(line)['results'].items()}


@pytest.mark.slow
def test_two_cpu_processes_give_the_result_of_one_on_image_folders(tmp_path, inputs):
    args = ['--gen', inputs['fake'], '--data', inputs['real'], '--metrics=fid1k_full,kid1k,pr1k3_full',
            '--detector-dir', inputs['detectors'], '--quiet']
    code, one, err = _finish(_start(tmp_path / 'one', *args, '--gpus=1'))
    assert code == 0, err[-3000:]
    code, two, err = _finish(_start(tmp_path / 'two', *args, '--gpus=2'))
    assert code == 0, err[-3000:]
    assert all(json.loads(line)['num_gpus'] == 2 for line in two.splitlines() if line.startswith('{'))
    one, two = _results(one), _results(two)
    assert sorted(one) == sorted(two) == ['fid1k_full', 'kid1k', 'pr1k3_full_precision', 'pr1k3_full_recall']
    # Both sets are split across the ranks and gathered in order: the same features, hence the same numbers.
    assert all(abs(one[key] - two[key]) <= 1e-6 * max(1.0, abs(one[key])) for key in one), (one, two)
    assert one['fid1k_full'] > 0
    assert _scratch_left(tmp_path / 'two' / 'tmp') == []


@pytest.mark.slow
def test_a_missing_detector_stops_every_rank_with_the_line_one_process_gives(tmp_path, inputs):
    args = ['--gen', inputs['fake'], '--data', inputs['real'], '--metrics=fid1k_full', f'--detector-dir={tmp_path}']
    single = _one_error_line(*_finish(_start(tmp_path / 'one', *args, '--gpus=1')))
    proc = _start(tmp_path / 'two', *args, '--gpus=2')
    line = _one_error_line(*_finish(proc))
    assert line == single and 'inception-2015-12-05.pt' in line
    assert _scratch_left(tmp_path / 'two' / 'tmp') == []


@pytest.mark.slow
def test_a_crash_in_one_rank_stops_the_others_in_one_line_after_its_traceback(tmp_path, inputs):
    (tmp_path / 'site').mkdir()
    (tmp_path / 'site' / 'sitecustomize.py').write_text(CRASH_IN_RANK_1)
    env = dict(os.environ, SQUEEZEGAN_TEST_METRICS_FAULT='1',
               PYTHONPATH=os.pathsep.join([str(tmp_path / 'site'), REPO_ROOT]))
    proc = _start(tmp_path, '--network', inputs['snapshot'], '--data', inputs['real'], '--metrics=fid1k_full',
                  '--detector-dir', inputs['detectors'], '--gpus=2', env=env)
    code, out, err = _finish(proc)
    assert code == 1, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith('Error: ')]
    assert lines == ['Error: metrics process rank 1 stopped on RuntimeError: injected fault in rank 1; the other ranks '
                     'were stopped (traceback above)'], err[-3000:]
    traceback_at = err.index('Traceback of rank 1:')
    assert traceback_at < err.index(lines[0]) and 'crash_in_rank_1' in err[traceback_at:]
    assert _results(out) == {} and _scratch_left(tmp_path / 'tmp') == []


@pytest.mark.slow
def test_sigterm_ends_every_rank_in_one_line_and_leaves_no_scratch(tmp_path, inputs):
    # Enough generated images that the ranks are still at work when the first progress line arrives.
    proc = _start(tmp_path, '--network', inputs['snapshot'], '--data', inputs['real'], '--metrics=fid50k_full',
                  '--detector-dir', inputs['detectors'], '--gpus=2')
    for line in proc.stderr:
        if line.startswith('fid50k_full:') and 'generated' in line:
            break
    else:
        raise AssertionError('calc_metrics.py ended before its first progress line on the generated images')
    ranks = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    line = _one_error_line(*_finish(proc))
    # The signal is passed on to every rank; the parent names the first it saw end.
    assert re.fullmatch(r'Error: metrics process rank [01] was killed by SIGTERM; the other ranks were stopped', line), line
    assert len(ranks) >= 2 and _alive(ranks) == [] and _scratch_left(tmp_path / 'tmp') == []


@pytest.mark.parametrize('args, message', [
    (['--gpus=2', '--device=cuda:1'], "Invalid value for --device: 'cuda:1' with --gpus=2; accepted: cuda (one GPU per "
                                       "process) or cpu"),
    (['--gpus=2', '--device=cuda'], 'add --device=cpu for 2 CPU processes'),
])
def test_gpus_without_as_many_cuda_devices_is_one_line_naming_the_way_to_cpu_processes(tmp_path, args, message):
    if args[1] == '--device=cuda' and torch.cuda.device_count() >= 2:
        pytest.skip('this machine has two CUDA devices')
    proc = subprocess.run([sys.executable, 'calc_metrics.py', '--metrics=fid1k_full', f'--gen={tmp_path}',
                           f'--data={tmp_path}', *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=limits.seconds(120))
    assert proc.returncode == 2 and message in proc.stderr and 'Traceback' not in proc.stderr, proc.stderr
