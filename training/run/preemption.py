"""Preemption: SIGTERM, SIGUSR1 or SIGINT make a run snapshot its current step and exit; a second one exits at once."""

# Clusters send SIGTERM (Kubernetes, SLURM at the time limit) or a chosen signal ahead of time
# (`sbatch --signal=B:USR1@120`) before they kill a job. The first signal only sets a flag; at the
# next step boundary every rank learns whether any rank has it (one small all-reduce), so all of them
# write the same snapshot and resume state and leave the loop together. A second signal means the
# user or the cluster will not wait: child processes (DataLoader workers) are terminated and the
# process exits with 128 + the signal number, as a shell reports a death by that signal.

import multiprocessing
import os
import signal
import threading

import torch

PREEMPT_SIGNALS = tuple(getattr(signal, name) for name in ('SIGTERM', 'SIGUSR1', 'SIGINT') if hasattr(signal, name))


def signal_name(signum):
    return signal.Signals(signum).name


class Preemption:
    """Installs the handlers for one training process; `requested()` is the agreement of all ranks."""

    def __init__(self, num_processes=1, device=torch.device('cpu')):
        self.num_processes = num_processes
        self.device = device
        self.received = None    # First signal this process received, or None.
        self.agreed = None      # Set once all ranks agreed to stop: the signal's name, or 'a signal to another rank'.
        self._previous = {}

    def install(self):
        """Take over the preemption signals (only possible in the main thread; elsewhere this is a no-op)."""
        if not _in_main_thread():
            return self
        for signum in PREEMPT_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def uninstall(self):
        restore_handlers(self._previous)
        self._previous = {}

    def _handle(self, signum, _frame):
        if self.received is not None:
            exit_now(signum)
        self.received = signum
        print(f'Received {signal_name(signum)}: writing a snapshot at the end of this step, then exiting '
              f'(send it again to exit at once).', flush=True)

    def requested(self):
        """True once any rank received a signal; every rank must call this at the same step boundary."""
        if self.agreed is None:
            flag = self.received is not None
            if self.num_processes > 1:
                tensor = torch.tensor([float(flag)], device=self.device)
                torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
                flag = bool(tensor.item())
            if flag:
                self.agreed = signal_name(self.received) if self.received is not None else 'a signal to another rank'
        return self.agreed is not None


def exit_now(signum):
    """End the child processes (DataLoader workers, spawned ranks), then this one, without cleanup."""
    for child in multiprocessing.active_children():
        child.terminate()
    os._exit(128 + signum)  # pylint: disable=protected-access


def ignore_in_worker(_worker_id=None):
    """DataLoader worker_init_fn: workers leave preemption to the main process, which ends them on exit.

    A SIGTERM sent to the whole process group would otherwise kill the workers first, and PyTorch would
    turn their deaths into an error in the main process while it writes the snapshot.
    """
    for signum in PREEMPT_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def forward_to(processes):
    """Handlers for a parent of spawned ranks: each signal is passed on to every child, which decides; at a
    second signal the parent, too, exits at once (with the children).

    Returns the previous handlers, for restore_handlers().
    """
    received = []

    def forward(signum, _frame):
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, signum)
        if received:
            exit_now(signum)
        received.append(signum)
    if not _in_main_thread():
        return {}
    return {signum: signal.signal(signum, forward) for signum in PREEMPT_SIGNALS}


def restore_handlers(previous):
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _in_main_thread():
    return threading.current_thread() is threading.main_thread()
