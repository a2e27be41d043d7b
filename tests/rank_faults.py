"""Faults injected into one rank of a spawned multi-process training run, for the launcher's tests.

A test writes a `sitecustomize.py` that calls `install()` (see `sitecustomize_dir`) and puts its folder first
on PYTHONPATH; every Python process of the run then imports it at start-up, spawned ranks included.
SQUEEZEGAN_TEST_FAULT=KIND:RANK picks the fault and the one rank that meets it:

    kill            the rank kills itself with SIGKILL at its 5th training step (after the first snapshot)
    eval_crash      the rank raises RuntimeError inside a metric, after the others entered its collectives
    no_detector     the rank finds no detector file when a metric starts (a node without the file)
    full_disk       the rank's second snapshot pickle meets ENOSPC (only rank 0 writes snapshots)
"""

import os
import signal

FAULT_ENV = 'SQUEEZEGAN_TEST_FAULT'
PID_DIR_ENV = 'SQUEEZEGAN_TEST_PID_DIR'  # Where each rank writes rank<N>.pid.
KINDS = ('kill', 'eval_crash', 'no_detector', 'full_disk')


def sitecustomize_dir(folder):
    """Write folder/sitecustomize.py that installs the fault named in the environment; returns the folder."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'sitecustomize.py'), 'w', encoding='utf-8') as f:
        f.write('import tests.rank_faults\ntests.rank_faults.install()\n')
    return str(folder)


def install():
    """Wrap the launcher's rank entry point so that the chosen rank meets the fault named in FAULT_ENV."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    kind, rank = spec.split(':')
    assert kind in KINDS, spec
    from training.cli import launch  # pylint: disable=import-outside-toplevel
    original = launch._rank_main  # pylint: disable=protected-access

    def _rank_main(index, config, temp_dir):
        if os.environ.get(PID_DIR_ENV):  # Every rank says who it is, so the test can check none is left.
            with open(os.path.join(os.environ[PID_DIR_ENV], f'rank{index}.pid'), 'w', encoding='utf-8') as f:
                f.write(str(os.getpid()))
        if index == int(rank):
            globals()[f'_inject_{kind}']()
        return original(index, config, temp_dir)
    # Spawn pickles the target by name: this wrapper must be what launch._rank_main names, in parent and child.
    _rank_main.__module__, _rank_main.__qualname__ = original.__module__, original.__qualname__
    launch._rank_main = _rank_main  # pylint: disable=protected-access


def _inject_kill():
    from training import training_loop  # pylint: disable=import-outside-toplevel
    train_step = training_loop.Run.train_step

    def dying_step(self):
        if self.progress.batch_idx == 4:
            os.kill(os.getpid(), signal.SIGKILL)
        return train_step(self)
    training_loop.Run.train_step = dying_step


def _inject_eval_crash():
    from metrics import metric_utils  # pylint: disable=import-outside-toplevel

    def crash(*_args, **_kwargs):
        raise RuntimeError('injected fault in this rank\'s evaluation')
    metric_utils.compute_feature_stats_for_generator = crash


def _inject_no_detector():
    from metrics import detectors  # pylint: disable=import-outside-toplevel

    def missing(detector, *_args, **_kwargs):
        raise detectors.DetectorUnavailableError(f'feature detector {detector.file_name} is not on this node')
    detectors.resolve_detector_file = missing


def _inject_full_disk():
    from tests import full_disk  # pylint: disable=import-outside-toplevel
    full_disk.fill_disk_after(2, 'network-snapshot-')  # The first pair (pickle, resume state) is written.
