"""Counting where tensor values reach Python (item, bool, float, int, index, tolist, numpy, cpu): on a GPU each is a
device-to-host synchronisation, so the training loop's steps between ticks must have none (bench/host_syncs.py, tests)."""

import collections
import os
import traceback

import torch

READS = ('item', '__bool__', '__float__', '__int__', '__index__', 'tolist', 'numpy', 'cpu')


class HostReads:
    """While active (a context manager), counts every read of a tensor's value by the file and line that asked.

    Works on any device, the CPU included, where it counts the reads a GPU would have to wait for. Tensors in
    `ignore` (host-side by design, such as Adam's step counters) are not counted.
    """

    def __init__(self, ignore=()):
        self.reads = collections.Counter()  # (method, absolute file name, line) -> count.
        self._ignore = {id(t) for t in ignore}
        self._originals = {name: getattr(torch.Tensor, name) for name in READS}

    def __enter__(self):
        for name, original in self._originals.items():
            setattr(torch.Tensor, name, self._counting(name, original))
        return self

    def __exit__(self, *exc):
        for name, original in self._originals.items():
            setattr(torch.Tensor, name, original)

    def _counting(self, name, original):
        def read(tensor, *args, **kwargs):
            if id(tensor) not in self._ignore:
                caller = traceback.extract_stack(limit=2)[0]
                self.reads[(name, os.path.abspath(caller.filename), caller.lineno)] += 1
            return original(tensor, *args, **kwargs)
        return read

    def total(self):
        return sum(self.reads.values())

    def outside(self, filename):
        """{(method, file, line): count} of the reads from anywhere but `filename`."""
        return {key: count for key, count in self.reads.items() if key[1] != os.path.abspath(filename)}

    def inside(self, filename):
        """How many reads came from `filename`."""
        return sum(count for key, count in self.reads.items() if key[1] == os.path.abspath(filename))


def optimizer_step_counters(optimizers):
    """The per-parameter step counters of torch optimizers: host tensors (capturable=False), not device reads."""
    return [state['step'] for opt in optimizers for state in opt.state.values()
            if isinstance(state.get('step'), torch.Tensor) and state['step'].device.type == 'cpu']
