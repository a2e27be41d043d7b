"""Adaptive discriminator augmentation: the controller that tunes AugmentPipe.p from D's overfitting (ADA, Sec. 2.3).

The overfitting heuristic is r_t = E[sign(D(real))], averaged over `interval` training steps from the
`Loss/signs/real` statistic that the loss reports. After each interval p moves by
sign(r_t - target) * (images in the interval) / (ada_kimg * 1000), i.e. p could go from 0 to 1 in
`ada_kimg` thousand images, and is clamped to [0, 1]. Call `step()` once per training step on every
process: the statistic is reduced over processes, so all of them agree on p.
"""

import re

import numpy as np
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
        target      = 0.6,                      # 'ada': the r_t that p is steered towards.
        interval    = 4,                        # 'ada': training steps between adjustments.
        ada_kimg    = 500,                      # 'ada': thousands of images for p to move by 1.
        batch_size  = 1,                        # Images per training step, over all processes.
        stat_name   = 'Loss/signs/real',        # training_stats name of sign(D(real)).
    ):
        if mode not in MODES:
            raise ValueError(f'augmentation mode must be one of {", ".join(MODES)}, got {mode!r}')
        if not 0 <= float(p) <= 1:
            raise ValueError(f'augmentation probability p must be in [0, 1], got {p!r}')
        if mode == 'ada' and not 0 <= float(target) <= 1:
            raise ValueError(f'ADA target must be in [0, 1], got {target!r}')
        if int(interval) < 1 or float(ada_kimg) <= 0 or int(batch_size) < 1:
            raise ValueError(f'ADA needs interval >= 1, ada_kimg > 0 and batch_size >= 1, got '
                             f'interval={interval!r}, ada_kimg={ada_kimg!r}, batch_size={batch_size!r}')
        if augment_pipe is None and (mode == 'ada' or (mode == 'fixed' and float(p) > 0)):
            raise ValueError(f'augmentation mode {mode!r} with p={p} needs an augment pipe')
        self.augment_pipe = augment_pipe
        self.mode = mode
        self.target = float(target)
        self.interval = int(interval)
        self.ada_kimg = float(ada_kimg)
        self.batch_size = int(batch_size)
        self.stat_name = stat_name
        self.last_rt = float('nan')   # r_t of the last completed interval (for logging).
        self._steps = 0               # Training steps since the last adjustment.
        self._sign_sum = 0.0          # Sum and count of sign(D(real)) gathered since the last adjustment.
        self._sign_count = 0
        self._p = 0.0 if mode == 'noaug' else float(p)
        self._collector = training_stats.Collector(regex=re.escape(stat_name), keep_previous=False) if mode == 'ada' else None
        self._apply_p()

    @property
    def p(self):
        """The current augmentation probability."""
        return self._p

    def step(self):
        """Count one training step; at the end of each interval, adjust p (a collective call in 'ada' mode)."""
        if self.mode != 'ada':
            return
        self._steps += 1
        if self._steps < self.interval:
            return
        self._gather()
        if self._sign_count > 0:
            self.last_rt = self._sign_sum / self._sign_count
            adjust = np.sign(self.last_rt - self.target) * (self.batch_size * self._steps) / (self.ada_kimg * 1000)
            self._p = float(np.clip(self._p + adjust, 0, 1))
            self._apply_p()
        self._steps = 0
        self._sign_sum = 0.0
        self._sign_count = 0

    # Resumable state -------------------------------------------------------

    def state_dict(self):
        """p and the partial interval (a collective call in 'ada' mode: call it on every process)."""
        if self.mode == 'ada':
            self._gather()
        return {'mode': self.mode, 'p': self._p, 'steps': self._steps,
                'sign_sum': self._sign_sum, 'sign_count': self._sign_count, 'last_rt': self.last_rt}

    def load_state_dict(self, state):
        """Continue from a snapshot; in 'fixed' and 'noaug' mode only an 'ada' snapshot's p is ignored."""
        if self.mode != 'ada':
            return
        if self._collector is not None:
            self._collector.update()  # Drop signs reported before the restore.
        self._p = float(state['p'])
        if state.get('mode') == 'ada':
            self._steps = int(state['steps'])
            self._sign_sum = float(state['sign_sum'])
            self._sign_count = int(state['sign_count'])
            self.last_rt = float(state.get('last_rt', float('nan')))
        self._apply_p()

    # Helpers --------------------------------------------------------------

    def _gather(self):
        """Move the signs reported since the last gather into this controller's sums."""
        self._collector.update()
        count = self._collector.num(self.stat_name)
        if count > 0:
            self._sign_sum += self._collector.mean(self.stat_name) * count
            self._sign_count += count

    def _apply_p(self):
        if self.augment_pipe is not None:
            with torch.no_grad():
                self.augment_pipe.p.copy_(torch.as_tensor(self._p))

#----------------------------------------------------------------------------
