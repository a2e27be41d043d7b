"""Statistics reported by name from anywhere in training and collected, across processes, in one place.

`report('Loss/G/loss', x)` adds the count, sum and sum of squares of x to a named counter; a
`Collector` turns the counters into means and standard deviations, reduced over all processes
(gloo or NCCL) when `init_multiprocessing` was called. Every process must report the same names
(an empty value counts) and call `Collector.update()` together. Sums stay on the device they were
reported on until a Collector's update() reads them (at a tick); `DeviceSums` hands them to code that
runs inside training steps (ADA) without any read to the host.
"""

import re
import weakref

import numpy as np
import torch

import dnnlib

#----------------------------------------------------------------------------

_num_moments = 3                  # [count, sum, sum of squares]
_counter_dtype = torch.float64    # Sums over a long run need double precision.
_rank = 0                         # Set by init_multiprocessing.
_sync_device = None               # Device for the cross-process reduction; None = no reduction.
_counters = dict()                # name -> {device: moments tensor} since the last sync
_collectors = weakref.WeakSet()   # live Collectors; each sync hands its sums to all of them

#----------------------------------------------------------------------------

def init_multiprocessing(rank, sync_device):
    """Declare this process's rank and the device used for the reduction (cuda for NCCL, cpu for gloo).

    Call once per process after torch.distributed is initialised; sync_device=None disables reduction.
    """
    global _rank, _sync_device
    _rank = int(rank)
    _sync_device = torch.device(sync_device) if sync_device is not None else None


def report(name, value):
    """Add the elements of `value` (a number, array or tensor; may be empty) to statistic `name`. Returns value."""
    counters = _counters.setdefault(name, dict())
    elems = torch.as_tensor(value.detach() if isinstance(value, torch.Tensor) else value)
    if elems.numel() == 0:
        return value
    elems = elems.flatten().to(_counter_dtype)
    moments = torch.stack([
        torch.ones_like(elems).sum(),
        elems.sum(),
        elems.square().sum(),
    ])
    if moments.device not in counters:
        counters[moments.device] = torch.zeros_like(moments)
    counters[moments.device].add_(moments)
    return value


def report0(name, value):
    """Like report(), but only rank 0's value counts (other ranks register the name with no data)."""
    report(name, value if _rank == 0 else [])
    return value

#----------------------------------------------------------------------------

def _sync(names):
    """Move the counters of `names` into every live Collector's pending moments, summed over every process.

    Each interval's sums are handed out as they are rather than as differences of running totals, so a
    NaN or inf reported once shows in that interval only and never poisons later ones.
    """
    if len(names) == 0:
        return
    device = _reduction_device(names)
    deltas = torch.zeros([len(names), _num_moments], dtype=_counter_dtype, device=device)
    for idx, name in enumerate(names):
        for counter in _counters.get(name, {}).values():
            deltas[idx].add_(counter.to(device))  # Host to device at most: never a read back.
            counter.zero_()
    if _sync_device is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(deltas)
    for collector in list(_collectors):
        for idx, name in enumerate(names):
            pending = collector._pending  # pylint: disable=protected-access
            pending[name] = pending[name] + deltas[idx] if name in pending else deltas[idx].clone()


def _reduction_device(names):
    """Where the sums of `names` are added up: the multiprocessing device, else where they were reported
    (an accelerator if any of them is there, so that nothing is copied back to the host)."""
    if _sync_device is not None:
        return _sync_device
    devices = [device for name in names for device in _counters.get(name, {})]
    return next((device for device in devices if device.type != 'cpu'), torch.device('cpu'))


class Collector:
    """Means and standard deviations of the statistics whose names match `regex`, since the last update()."""

    def __init__(self,
        regex         = '.*',    # Which statistic names to collect (full match).
        keep_previous = True,    # Keep a statistic's last value when nothing new was reported for it.
    ):
        self._regex = re.compile(regex)
        self._keep_previous = keep_previous
        self._pending = dict()   # name -> moments synced since this collector's last update
        self._moments = dict()   # name -> moments of the last interval that had data
        self.update()            # Everything reported before the collector existed is dropped.
        self._moments.clear()
        _collectors.add(self)

    def names(self):
        """Names of all reported statistics that match the regex, sorted (the same order on every rank)."""
        return sorted(name for name in _counters if self._regex.fullmatch(name))

    def update(self):
        """Take in everything reported since the last update (a collective call when multiprocessing)."""
        if not self._keep_previous:
            self._moments.clear()
        names = self.names()
        _sync(names)
        for name in names:
            delta = self._pending.pop(name, None)
            if delta is not None:
                delta = delta.cpu()  # The one read to the host, once per update (a tick).
                if float(delta[0]) != 0:
                    self._moments[name] = delta
        self._pending.clear()

    def _get(self, name):
        moments = self._moments.get(name, None)
        if moments is None:
            return 0.0, np.nan, np.nan
        count, total, total_sq = (float(m) for m in moments)
        mean = total / count
        variance = max(total_sq / count - mean ** 2, 0.0)
        return count, mean, float(np.sqrt(variance))

    def num(self, name):
        """Number of scalars reported for `name` between the last two updates."""
        return int(self._get(name)[0])

    def mean(self, name):
        return self._get(name)[1]

    def std(self, name):
        return self._get(name)[2]

    def as_dict(self):
        """{name: {num, mean, std}} for every statistic that has data, as stats.jsonl stores it."""
        stats = dnnlib.EasyDict()
        for name in self.names():
            if name in self._moments:
                num, mean, std = self._get(name)
                stats[name] = dnnlib.EasyDict(num=int(num), mean=mean, std=std)
        return stats

    def __getitem__(self, name):
        return self.mean(name)


class DeviceSums:
    """The moments [count, sum, sum of squares] of one statistic since the last take(), summed over processes
    and left on the device: for code inside training steps, which must not wait for a read to the host."""

    def __init__(self, name):
        self.name = name
        self._pending = dict()  # Filled by _sync, like a Collector's.
        _sync([name])           # Everything reported before this existed is dropped.
        self._pending.clear()
        _collectors.add(self)

    def take(self):
        """A float64 tensor [count, sum, sum of squares] (zeros when nothing was reported), or None before the
        first report of the name on any process; a collective call when multiprocessing."""
        _sync([self.name] if self.name in _counters else [])
        return self._pending.pop(self.name, None)

#----------------------------------------------------------------------------
