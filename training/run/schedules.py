"""Cosine schedules of training settings, evaluated at every step from the number of images shown.

A preset's "schedules" maps a setting to {"start": a, "end": b, "kimg": k}: the value is a at 0 images, moves to b
along half a cosine (slow, fast, slow) over k thousand images, and stays b after that, as R3GAN's training loop
does (Huang et al. 2024, `cosine_decay_with_warmup` without warm-up). The value depends on the image count alone,
so a resumed run takes up every schedule exactly where it stopped; evaluating one is host arithmetic, so a
training step never waits for the device.
"""

import math

from training import loss as training_loss

# Settings a schedule may drive, and the values each accepts (checked by the option table, options.py).
SCHEDULED = {
    'lr':       (lambda v: v > 0, 'a positive number'),             # Adam's learning rate of G and D.
    'gamma':    (lambda v: v >= 0, 'a number >= 0'),                # Weight of R1 (and R2 under --loss=rpgan).
    'beta2':    (lambda v: 0 <= v < 1, 'a number in [0, 1)'),       # Adam's beta2 of G and D.
    'ema_kimg': (lambda v: v >= 0, 'a number >= 0'),                # Half-life of the G_ema average in kimg.
    'aug_p':    (lambda v: 0 <= v <= 1, 'a number in [0, 1]'),      # Augmentation probability p.
}
FIELDS = ('start', 'end', 'kimg')


def schedule_problem(schedules):
    """What is wrong with a preset's "schedules" value (after 'must be'-style wording), or None when it fits."""
    if schedules is None:
        return None
    if not isinstance(schedules, dict):
        return 'an object {setting: {"start": a, "end": b, "kimg": k}} or null'
    for name, spec in schedules.items():
        if name not in SCHEDULED:
            return f'{name}: not a setting a schedule drives; accepted: {", ".join(SCHEDULED)}'
        if not (isinstance(spec, dict) and sorted(spec) == sorted(FIELDS)
                and all(isinstance(spec[f], (int, float)) and not isinstance(spec[f], bool) and math.isfinite(spec[f])
                        for f in FIELDS)):
            return f'{name}: must be {{"start": number, "end": number, "kimg": number}}'
        fits, text = SCHEDULED[name]
        if not (fits(spec['start']) and fits(spec['end'])):
            return f'{name}: start and end must each be {text}'
        if spec['kimg'] <= 0:
            return f'{name}: kimg must be a positive number'
    return None


def cosine(start, end, kimg, cur_nimg):
    """start at 0 images, end from kimg * 1000 images on, half a cosine in between."""
    progress = min(max(cur_nimg / (kimg * 1000), 0.0), 1.0)
    return start + (end - start) * (1 - math.cos(math.pi * progress)) / 2


def values_at(schedules, cur_nimg):
    """{setting: value} of every schedule at `cur_nimg` images."""
    return {name: cosine(spec['start'], spec['end'], spec['kimg'], cur_nimg) for name, spec in (schedules or {}).items()}


def apply_to_optimizer(opt, values, reg_interval, beta1):
    """Set the scheduled lr and beta2 (of `values`) in every param group of `opt`, rescaled for lazy
    regularisation as the configured ones are (training.loss.lazy_regularization_opt_kwargs)."""
    if 'lr' not in values and 'beta2' not in values:
        return
    scaled = training_loss.lazy_regularization_opt_kwargs(dict(lr=values.get('lr', 0.0),
                                                               betas=[beta1, values.get('beta2', 0.0)]), reg_interval)
    for group in opt.param_groups:
        if 'lr' in values:
            group['lr'] = scaled.lr
        if 'beta2' in values:
            group['betas'] = (scaled.betas[0], scaled.betas[1])
