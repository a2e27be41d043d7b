"""Preemption: SIGTERM/SIGUSR1/SIGINT write a snapshot and exit 0, the run resumes bit-exactly, a second signal exits at once."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.train_helpers import TINY_ARGS, final_snapshot_tensors, write_image_folder
from tests import limits

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ADA with bgc so that augmentation draws and p are part of what must survive; 12 steps of 4 images.
RUN_ARGS = [*TINY_ARGS, '--aug=ada', '--augpipe=bgc', '--kimg=0.048', '--tick=0.016', '--snap=1']


@pytest.fixture(scope='module')
def data16(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp('data') / 'tiny16', num_images=8, resolution=16)


def _train_command(outdir, data, *extra):
    return [sys.executable, 'train.py', f'--outdir={outdir}', f'--data={data}', *RUN_ARGS, *extra]


def _start(outdir, data, *extra, temp_dir=None):
    """Start train.py; with `temp_dir`, it is made and is the run's TMPDIR."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    if temp_dir is not None:
        os.makedirs(temp_dir)
        env['TMPDIR'] = str(temp_dir)
    return subprocess.Popen(_train_command(outdir, data, *extra), cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def _scratch_left(temp_dir):
    """What a run left in its TMPDIR, less PyTorch's own compile cache (torchinductor_USER), which it keeps."""
    return [name for name in os.listdir(temp_dir) if not name.startswith('torchinductor_')]


def _wait_for_first_tick(proc):
    """Read the run's output until its first status line (the first step is done); returns what was read."""
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith('tick 0 '):
            return seen
    raise AssertionError('training ended before its first tick:\n' + ''.join(seen))


def _children(pid):
    """Pids of the processes whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as f:
                    if int(f.read().rsplit(')', 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def _alive(pids, grace=15.0):
    deadline = time.time() + limits.seconds(grace)
    while time.time() < deadline:
        living = [pid for pid in pids if os.path.exists(f'/proc/{pid}') and
                  open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[0] != 'Z']
        if not living:
            return []
        time.sleep(0.1)
    return living


def _final_tensors(outdir):
    return final_snapshot_tensors(os.path.join(outdir, sorted(os.listdir(outdir))[-1]))


def test_sigterm_writes_a_snapshot_exits_0_and_resume_continues_bit_exactly(tmp_path, data16):
    signum = signal.SIGTERM
    reference = subprocess.run(_train_command(tmp_path / 'a', data16), cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=limits.seconds(300), env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert reference.returncode == 0, reference.stdout[-2000:] + reference.stderr[-2000:]

    proc = _start(tmp_path / 'b', data16)
    _wait_for_first_tick(proc)
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=limits.seconds(60))
    assert proc.returncode == 0, out[-3000:]
    assert f'Preempted ({signal.Signals(signum).name}) at kimg' in out and 'Training done.' not in out
    run_dir = tmp_path / 'b' / os.listdir(tmp_path / 'b')[0]
    assert any(f.endswith('.resume.pt') for f in os.listdir(run_dir))
    assert not any(f.endswith('.tmp') for f in os.listdir(run_dir))

    resumed = subprocess.run(_train_command(tmp_path / 'b', data16, '--resume=latest'), cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=limits.seconds(300), env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert 'exact resume' in resumed.stdout and 'Training done.' in resumed.stdout
    expected, actual = _final_tensors(tmp_path / 'a'), _final_tensors(tmp_path / 'b')
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name


def test_preempt_exit_code_is_what_the_cluster_asked_for(tmp_path, data16):
    proc = _start(tmp_path / 'runs', data16, '--preempt-exit-code=3')
    _wait_for_first_tick(proc)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=limits.seconds(60))
    assert proc.returncode == 3, out[-3000:]
    assert 'Preempted (SIGINT)' in out


@pytest.mark.parametrize('second', [False, True])
def test_dataloader_workers_end_with_the_main_process(tmp_path, data16, second):
    proc = _start(tmp_path / 'runs', data16, '--workers=2')
    _wait_for_first_tick(proc)
    workers = _children(proc.pid)
    assert len(workers) >= 2
    proc.send_signal(signal.SIGUSR1)
    if second:  # A different signal, so that the two are not merged into one while pending.
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=limits.seconds(60))
    assert proc.returncode == (128 + signal.SIGTERM if second else 0), out[-3000:]
    assert _alive(workers) == []


def test_spawned_ranks_receive_the_signal_agree_and_exit_with_the_parent(tmp_path, data16):
    proc = _start(tmp_path / 'runs', data16, '--gpus=2', temp_dir=tmp_path / 'tmp')
    _wait_for_first_tick(proc)
    ranks = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)  # Only the parent gets it, as with `sbatch --signal=B:...`.
    out, _ = proc.communicate(timeout=limits.seconds(120))
    assert proc.returncode == 0, out[-3000:]
    assert 'Preempted (SIGTERM) at kimg' in out
    assert _alive(ranks) == [] and _scratch_left(tmp_path / 'tmp') == []  # The ranks' rendezvous folder is gone.
    run_dir = tmp_path / 'runs' / os.listdir(tmp_path / 'runs')[0]
    assert any(f.endswith('.resume.pt') for f in os.listdir(run_dir))


def test_a_second_signal_to_the_parent_of_spawned_ranks_ends_everything_at_once(tmp_path, data16):
    proc = _start(tmp_path / 'runs', data16, '--gpus=2', '--kimg=10', temp_dir=tmp_path / 'tmp')
    _wait_for_first_tick(proc)
    ranks = _children(proc.pid)
    proc.send_signal(signal.SIGUSR1)
    proc.send_signal(signal.SIGTERM)  # A different signal, so that the two are not merged into one while pending.
    out, _ = proc.communicate(timeout=limits.seconds(60))
    assert proc.returncode == 128 + signal.SIGTERM, out[-3000:]
    assert 'Traceback' not in out
    assert _alive(ranks) == [] and _scratch_left(tmp_path / 'tmp') == []  # At once, yet without leaving scratch behind.


def test_the_signal_handler_writes_nothing_and_the_next_step_boundary_says_it(monkeypatch, capsys):
    # A handler that prints can land inside the main thread's write to the same log: "reentrant call inside
    # <_io.BufferedWriter ... log.txt>" once killed a preempted 2-process run. The handler only sets the flag.
    from training.run import preemption  # pylint: disable=import-outside-toplevel

    class NoWrites:
        def write(self, _text):
            raise AssertionError('the signal handler wrote to a stream')

        def flush(self):
            raise AssertionError('the signal handler flushed a stream')
    watcher = preemption.Preemption(num_processes=1)
    monkeypatch.setattr(sys, 'stdout', NoWrites())
    watcher._handle(signal.SIGTERM, None)  # pylint: disable=protected-access
    monkeypatch.undo()
    assert watcher.requested() and watcher.agreed == 'SIGTERM'
    assert watcher.requested()
    said = capsys.readouterr().out.splitlines()
    assert said == ['Received SIGTERM: writing a snapshot, then exiting (send it again to exit at once).']
