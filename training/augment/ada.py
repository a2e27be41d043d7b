"""Adaptive discriminator augmentation: the controller that tunes AugmentPipe.p from D's overfitting (ADA, Sec. 2.3).

The overfitting heuristic is r_t = E[sign(D(real))], averaged over `interval` training steps from the
`Loss/signs/real` statistic that the loss reports. After each interval p moves by
sign(r_t - target) * (images in the interval) / (ada_kimg * 1000), i.e. p could go from 0 to 1 in
`ada_kimg` thousand images, and is clamped to [0, 1]. Call `step()` once per training step on every
process: the statistic is reduced over processes, so all of them agree on p.
"""

import torch

from torch_utils import training_stats

#----------------------------------------------------------------------------

MODES = ('ada', 'fixed', 'noaug')


class AdaController:
    """Owns the augmentation probability p of an AugmentPipe; resumable through state_dict()."""

    def __init__(self,
        augment_pipe,                           # AugmentPipe whose `p` buffer is set (None allowed for 'noaug').
        mode        = 'ada',                    # 'ada' (adaptive), 'fixed' (p stays at `p`) or 'noaug' (p = 0).
        p           = 0,                        # Initial p for 'ada', the constant p for 'fixed'.
        target      = None,                     # 'ada': the r_t that p is steered towards (train.py's --target).
        interval    = None,                     # 'ada': training steps between adjustments.
        ada_kimg    = None,                     # 'ada': thousands of images for p to move by 1.
        batch_size  = 1,                        # Images per training step, over all processes.
        stat_name   = 'Loss/signs/real',        # training_stats name of sign(D(real)).
    ):
        if mode not in MODES:
            raise ValueError(f'augmentation mode must be one of {", ".join(MODES)}, got {mode!r}')
        if not 0 <= float(p) <= 1:
            raise ValueError(f'augmentation probability p must be in [0, 1], got {p!r}')
        if augment_pipe is None and (mode == 'ada' or (mode == 'fixed' and float(p) > 0)):
            raise ValueError(f'augmentation mode {mode!r} with p={p} needs an augment pipe')
        if mode == 'ada' and (target is None or interval is None or ada_kimg is None):
            raise ValueError('ADA needs its target, interval and ada_kimg (the run config\'s ada_target, ada_interval, '
                             'ada_kimg)')
        target, interval, ada_kimg = (0.0, 1, 1.0) if mode != 'ada' else (target, interval, ada_kimg)  # Unused there.
        if not 0 <= float(target) <= 1:
            raise ValueError(f'ADA target must be in [0, 1], got {target!r}')
        if int(interval) < 1 or float(ada_kimg) <= 0 or int(batch_size) < 1:
            raise ValueError(f'ADA needs interval >= 1, ada_kimg > 0 and batch_size >= 1, got '
                             f'interval={interval!r}, ada_kimg={ada_kimg!r}, batch_size={batch_size!r}')
        self.augment_pipe = augment_pipe
        self.mode = mode
        self.target = float(target)
        self.interval = int(interval)
        self.ada_kimg = float(ada_kimg)
        self.batch_size = int(batch_size)
        self.stat_name = stat_name
        # p and the interval's sums live on the pipe's device in float64 and change there: an adjustment
        # never waits for a read to the host. Python floats appear only in state_dict() and the properties.
        device = augment_pipe.p.device if augment_pipe is not None else torch.device('cpu')
        self._steps = 0                                   # Training steps since the last adjustment.
        self._p = torch.tensor(0.0 if mode == 'noaug' else float(p), dtype=torch.float64, device=device)
        self._signs = torch.zeros([2], dtype=torch.float64, device=device)  # [count, sum] of sign(D(real)) so far.
        self._last_rt = torch.tensor(float('nan'), dtype=torch.float64, device=device)
        self._sums = training_stats.DeviceSums(stat_name) if mode == 'ada' else None
        self._apply_p()

    @property
    def p(self):
        """The current augmentation probability (a read from the device)."""
        return float(self._p)

    @property
    def last_rt(self):
        """r_t of the last completed interval, NaN before the first (a read from the device)."""
        return float(self._last_rt)

    def step(self):
        """Count one training step; at the end of each interval, adjust p (a collective call in 'ada' mode)."""
        if self.mode != 'ada':
            return
        self._steps += 1
        if self._steps < self.interval:
            return
        self._gather()
        count, total = self._signs[0], self._signs[1]
        rt = total / count.clamp(min=1)
        adjust = torch.sign(rt - self.target) * ((self.batch_size * self._steps) / (self.ada_kimg * 1000))
        seen = count > 0  # An interval without reported signs leaves p alone.
        self._last_rt = torch.where(seen, rt, self._last_rt)
        self._p = torch.where(seen, (self._p + adjust).clamp(0, 1), self._p)
        self._apply_p()
        self._steps = 0
        self._signs.zero_()

    def set_p(self, value):
        """'fixed' mode: p follows a schedule (set on the device, nothing read back)."""
        if self.mode != 'fixed':
            raise ValueError(f'only a fixed-p controller takes its p from a schedule, this one is {self.mode!r}')
        if not 0 <= float(value) <= 1:
            raise ValueError(f'augmentation probability p must be in [0, 1], got {value!r}')
        self._p.fill_(float(value))
        self._apply_p()

    # Resumable state -------------------------------------------------------

    def state_dict(self):
        """p and the partial interval (a collective call in 'ada' mode: call it on every process)."""
        if self.mode == 'ada':
            self._gather()
        count, total = self._signs.tolist()
        return {'mode': self.mode, 'p': self.p, 'steps': self._steps,
                'sign_sum': total, 'sign_count': int(count), 'last_rt': self.last_rt}

    def load_state_dict(self, state):
        """Continue from a snapshot; in 'fixed' and 'noaug' mode only an 'ada' snapshot's p is ignored."""
        if self.mode != 'ada':
            return
        self._sums.take()  # Drop signs reported before the restore.
        self._p.fill_(float(state['p']))
        if state.get('mode') == 'ada':
            self._steps = int(state['steps'])
            self._signs.copy_(torch.tensor([float(state['sign_count']), float(state['sign_sum'])], dtype=torch.float64))
            self._last_rt.fill_(float(state.get('last_rt', float('nan'))))
        self._apply_p()

    # Helpers --------------------------------------------------------------

    def _gather(self):
        """Add the signs reported since the last gather (on every process) to this interval's [count, sum]."""
        moments = self._sums.take()
        if moments is not None:
            self._signs += moments[:2].to(self._signs.device)

    def _apply_p(self):
        if self.augment_pipe is not None:
            with torch.no_grad():
                self.augment_pipe.p.copy_(self._p)

#----------------------------------------------------------------------------
