"""Preemption: SIGTERM, SIGUSR1 or SIGINT make a run snapshot its current step and exit; a second one exits at once."""

# Clusters send SIGTERM (Kubernetes, SLURM at the time limit) or a chosen signal ahead of time
# (`sbatch --signal=B:USR1@120`) before they kill a job. The first signal only sets a flag. With several
# ranks, each step boundary starts an asynchronous all-reduce (MAX) of the flags in host memory over a
# gloo group of its own, and reads the one started a step earlier: every rank learns of any rank's signal
# at the same boundary, one step after it arrived, so all of them write the same snapshot and resume state
# and leave the loop together, and no step waits for a read from the GPU. A second signal means the
# user or the cluster will not wait: child processes (DataLoader workers) are terminated and the
# process exits with 128 + the signal number, as a shell reports a death by that signal.

import datetime
import multiprocessing
import os
import signal
import shutil
import threading

import torch

PREEMPT_SIGNALS = tuple(getattr(signal, name) for name in ('SIGTERM', 'SIGUSR1', 'SIGINT') if hasattr(signal, name))


def signal_name(signum):
    return signal.Signals(signum).name


class Preemption:
    """Installs the handlers for one training process; `requested()` is the agreement of all ranks."""

    def __init__(self, num_processes=1, timeout=None):
        self.num_processes = num_processes
        self.received = None    # First signal this process received, or None.
        self._announced = False # Whether the log has said so (at a step boundary, never in the handler).
        self.agreed = None      # Set once all ranks agreed to stop: the signal's name, or 'a signal to another rank'.
        self._previous = {}
        self._group = None      # With several ranks: the gloo group the flags travel in (made by every rank here).
        self._flag = None       # Host tensor the exchange reduces, and a numpy view to read it without torch.
        self._work = None       # The exchange in flight, started at the previous step boundary.
        if num_processes > 1:
            # timeout: seconds the exchange waits for a lost peer (--dist-timeout), None = the process group's.
            kwargs = {} if timeout is None else dict(timeout=datetime.timedelta(seconds=timeout))
            self._group = torch.distributed.new_group(backend='gloo', **kwargs)
            self._flag = torch.zeros([1], dtype=torch.float32)
            self._flag_view = self._flag.numpy()

    def install(self):
        """Take over the preemption signals (only possible in the main thread; elsewhere this is a no-op)."""
        if not _in_main_thread():
            return self
        for signum in PREEMPT_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def uninstall(self):
        """Give the signals back; wait for the exchange in flight (every rank has started it), so none is left."""
        restore_handlers(self._previous)
        self._previous = {}
        if self._work is not None:
            self._work.wait()
            self._work = None

    def _handle(self, signum, _frame):
        # No I/O here: the handler runs between two bytecodes of the main thread, which may be inside a write to
        # the same stream (the log), and a buffered stream refuses the reentrant call. requested() says it.
        if self.received is not None:
            exit_now(signum)
        self.received = signum

    def requested(self):
        """True once the ranks agreed to stop; every rank must call this at every step boundary."""
        if self.received is not None and not self._announced:
            self._announced = True
            print(f'Received {signal_name(self.received)}: writing a snapshot, then exiting '
                  f'(send it again to exit at once).', flush=True)
        if self.agreed is None:
            flag = self.received is not None if self.num_processes == 1 else self._exchange()
            if flag:
                self.agreed = signal_name(self.received) if self.received is not None else 'a signal to another rank'
        return self.agreed is not None

    def _exchange(self):
        """Whether any rank had a signal at the previous boundary; starts the exchange for this one."""
        flag = False
        if self._work is not None:
            self._work.wait()  # Host-side gloo: it waits for the peers' flags, never for the GPU.
            flag = bool(self._flag_view[0] > 0)
        self._flag_view[0] = float(self.received is not None)
        self._work = torch.distributed.all_reduce(self._flag, op=torch.distributed.ReduceOp.MAX, group=self._group,
                                                  async_op=True)
        return flag


def exit_now(signum, scratch=None):
    """End the child processes (DataLoader workers, spawned ranks), remove the folder `scratch` if given, then end
    this process without any other cleanup."""
    for child in multiprocessing.active_children():
        child.terminate()
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
    os._exit(128 + signum)  # pylint: disable=protected-access


def ignore_in_worker(_worker_id=None):
    """DataLoader worker_init_fn: workers leave preemption to the main process, which ends them on exit.

    A SIGTERM sent to the whole process group would otherwise kill the workers first, and PyTorch would
    turn their deaths into an error in the main process while it writes the snapshot.
    """
    for signum in PREEMPT_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def forward_to(processes, scratch=None):
    """Handlers for a parent of spawned ranks: each signal is passed on to every child, which decides; at a
    second signal the parent, too, exits at once (with the children), removing its folder `scratch`.

    Returns the previous handlers, for restore_handlers().
    """
    received = []

    def forward(signum, _frame):
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, signum)
        if received:
            exit_now(signum, scratch)
        received.append(signum)
    if not _in_main_thread():
        return {}
    return {signum: signal.signal(signum, forward) for signum in PREEMPT_SIGNALS}


def restore_handlers(previous):
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _in_main_thread():
    return threading.current_thread() is threading.main_thread()
