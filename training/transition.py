"""Transitional conditioning (Shahbazi et al., "Collapse by Conditioning: Training Class-conditional GANs with
Limited Data", ICLR 2022): train unconditionally first, then blend the labels in.

A scalar `transition` moves from 0 to 1, linearly in the images shown from --t-start-kimg to --t-end-kimg. It lives
as a buffer in G's mapping network (the embedded label joins w scaled by it, training/networks/layers.py) and in D,
whose head gives an unconditional logit and the label's projection logit: the main loss and R1 see the unconditional
one, and the conditional one's logistic loss joins G's and D's main passes weighted by D's transition
(`CondLogitLoss`). At 0 both networks are unconditional; at 1, G is conditional and D is trained on both logits.
"""

import torch

from torch_utils import training_stats
from training.loss import LossTerm

#----------------------------------------------------------------------------

def transition_at(cur_nimg, start_kimg, end_kimg):
    """0 up to start_kimg, 1 from end_kimg on, linear in the images shown between (a step at start_kimg when the
    two are equal). Host arithmetic on the image count alone, so a resumed run continues exactly."""
    if end_kimg <= start_kimg:
        return 1.0 if cur_nimg >= start_kimg * 1000 else 0.0
    return min(max((cur_nimg / 1000 - start_kimg) / (end_kimg - start_kimg), 0.0), 1.0)


def transition_modules(G, D):
    """The modules that hold a `transition` buffer: G's mapping network and D."""
    return [G.mapping, D]

#----------------------------------------------------------------------------

class CondLogitLoss(LossTerm):
    """The logistic loss of D's conditional logit (heads['cond_logits']), weighted by D's transition: in G's main
    pass softplus(-l) on fakes, in D's softplus(l) on fakes and softplus(-l) on reals, as the main loss treats the
    unconditional logit."""

    # The real side also joins the lazy R1 pass, with zero weight: the reference slices its [N, 2] logits, so R1's
    # backward gives the conditional path zero gradients rather than none, and Adam counts such a step (its second
    # moment decays); a missing gradient would skip those parameters at every R1 step instead.
    SIDES = {'G': (('Gmain',), -1, 'G/cond', 'fake'), 'fake': (('Dgen',), 1, 'D/cond_fake', 'fake'),
             'real': (('Dreal', 'Dr1'), -1, 'D/cond_real', 'real')}

    def __init__(self,
        side,               # 'G' (G's main pass), 'fake' or 'real' (D's main passes).
        device  = None,     # Unused; every term is built with the loss's device.
    ):
        del device
        if side not in self.SIDES:
            raise ValueError(f'CondLogitLoss: side must be one of {", ".join(self.SIDES)}, got {side!r}')
        self.passes, self.sign, self.name, images = self.SIDES[side]
        self.scores_stat = f'Loss/scores/{images}_cond'  # Beside Loss/scores/{images}, the unconditional ones.

    def reported(self, ctx):
        return ctx.phase != 'Dreg'  # Its zero-weighted join of the R1 pass is no conditional loss.

    def __call__(self, ctx):
        heads = ctx.heads[0] if ctx.heads and isinstance(ctx.heads[0], dict) else {}
        if 'cond_logits' not in heads:
            raise ValueError('CondLogitLoss needs a discriminator built with cond_transition (heads["cond_logits"])')
        logits = heads['cond_logits']
        if ctx.phase == 'Dreg':  # The R1 pass alone (see SIDES).
            return logits.flatten() * 0
        training_stats.report(self.scores_stat, logits)
        return torch.nn.functional.softplus(self.sign * logits).flatten() * ctx.D.transition
