"""A spawned rank that dies or fails alone ends the whole run within seconds: one line naming the rank and how it
ended, a non-zero exit, no traceback, no process left behind, and the newest complete snapshot still resumes."""

import os
import subprocess
import sys

import pytest

from tests import rank_faults
from tests.metrics_helpers import write_detector_dir
from tests.safety_helpers import REPO_ROOT
from tests.test_train_preemption import _alive
from tests.train_helpers import TINY_ARGS, write_image_folder
from training.cli import resume_source
from training.run import resume as run_resume
from tests import limits


@pytest.fixture(scope='module')
def data16(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp('data') / 'tiny16', num_images=8, resolution=16)


def _train_with_fault(tmp_path, data, fault, *extra):
    """Run train.py with 2 gloo ranks and the fault; returns (exit code, stdout, stderr, pids of every rank).

    --dist-timeout is an hour and the run gets 10 minutes: a rank left waiting for its lost peer fails the test
    (TimeoutExpired), however slow the machine is otherwise.
    """
    site = rank_faults.sitecustomize_dir(tmp_path / 'site')
    pid_dir = tmp_path / 'pids'
    pid_dir.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=f'{site}{os.pathsep}{REPO_ROOT}',
               **{rank_faults.FAULT_ENV: fault, rank_faults.PID_DIR_ENV: str(pid_dir)})
    command = [sys.executable, 'train.py', f'--outdir={tmp_path / "runs"}', f'--data={data}', *TINY_ARGS, '--gpus=2',
               '--dist-timeout=3600', *extra]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=limits.seconds(600), check=False)
    ranks = [int((pid_dir / name).read_text()) for name in sorted(os.listdir(pid_dir))]
    return result.returncode, result.stdout, result.stderr, ranks


def _assert_one_line_and_nothing_left(code, out, err, ranks, *fragments):
    assert code == 1, out[-2000:] + err[-3000:]
    assert 'Traceback' not in out + err, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith('Error:')]
    assert len(errors) == 1, err[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert len(ranks) == 2 and _alive(ranks) == []
    return errors[0]


@pytest.mark.slow
def test_a_rank_killed_by_sigkill_stops_the_run_naming_it_and_the_snapshot_resumes(tmp_path, data16):
    result = _train_with_fault(tmp_path, data16, 'kill:1')
    line = _assert_one_line_and_nothing_left(*result, 'training process rank 1 was killed by SIGKILL',
                                             'the other ranks were stopped', '--resume=latest')
    assert 'out-of-memory' in line
    latest = resume_source.find_latest_snapshot(str(tmp_path / 'runs'))
    assert latest is not None and run_resume.pair_problem(latest) is None


@pytest.mark.slow
@pytest.mark.parametrize('fault, fragments', [
    ('eval_crash:1', ['training process rank 1 stopped on RuntimeError: injected fault in this rank\'s evaluation',
                      'traceback in ']),
    ('no_detector:1', ['training process rank 1 stopped on DetectorUnavailableError: feature detector '
                       'inception-2015-12-05.pt is not on this node']),
])
def test_a_metric_failing_on_one_rank_stops_every_rank_with_one_line(tmp_path, data16, fault, fragments):
    detectors = write_detector_dir(tmp_path / 'detectors')
    result = _train_with_fault(tmp_path, data16, fault, '--metrics=fid1k_full', f'--detector-dir={detectors}',
                               '--kimg=0.008')
    _assert_one_line_and_nothing_left(*result, *fragments)
    if fault.startswith('eval_crash'):
        run_dir = tmp_path / 'runs' / os.listdir(tmp_path / 'runs')[0]
        log = (run_dir / 'log.txt').read_text()
        assert 'Traceback of rank 1:' in log and 'injected fault' in log


@pytest.mark.slow
def test_a_full_disk_under_rank_0s_snapshot_stops_every_rank_with_one_line(tmp_path, data16):
    result = _train_with_fault(tmp_path, data16, 'full_disk:0')
    line = _assert_one_line_and_nothing_left(*result, 'cannot write ', 'the disk is full')
    assert 'network-snapshot-000000_012img.pkl' in line
    latest = resume_source.find_latest_snapshot(str(tmp_path / 'runs'))
    assert latest.endswith('network-snapshot-000000.pkl') and run_resume.pair_problem(latest) is None
