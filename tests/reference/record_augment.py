"""Record what stylegan2-ada-pytorch's AugmentPipe computes, so tests and docs can hold ours to it without it.

    python tests/reference/record_augment.py --reference=/path/to/stylegan2-ada-pytorch --commit=SHA

Runs the reference's training/augment.py (CPU, its plain-PyTorch op paths) on one fixed batch for every case of
CASES at every percentile of PERCENTILES, with `debug_percentile` set: every enabled augmentation is then
applied with its parameter at that percentile of its distribution, so the output does not depend on the order in
which random numbers are drawn (the codes draw in different orders). Noise's pixels are random draws whatever
the percentile, so the cases with noise run with every Gaussian draw replaced by one fixed field (FIXED_FIELD):
what is held is then its sigma at the percentile, its gate and where it is added. Writes
stylegan2_ada_augment_recorded.json beside this file (every STRIDE-th output value).

`debug_percentile` bypasses the expressions that draw each parameter in training. Those are recorded too: every
case runs again without it, with every uniform draw (torch.rand, rand_like) returning one value and every
Gaussian draw (randn, randn_like) another, for each pair of CONSTANT_DRAWS. Each parameter is then a fixed
function of the pair whatever the order of the draws, and at p = 1 every gate (a uniform draw < p * strength) is
open: a parameter drawn by a wrong expression (a rotation 5% too wide, a scale's spread off) changes these numbers.

It also records the ADA controller: the reference adjusts p inline in its training loop (training_loop.py, the
`if (ada_stats is not None) and (batch_idx % ada_interval == 0)` statement), so that one statement is taken from
the file's syntax tree and run, step by step, with the signs of ADA_SIGNS standing in for sign(D(real)). scripts/augment_parity.py and tests/test_reference_parity.py compute the same with our pipe, from
the functions below. Nothing from the reference is committed or read at test time: only these numbers.
"""

import ast
import contextlib
import os
import sys

import numpy as np
import torch

sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # After the reference's.
from tests.reference import recording_main  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'stylegan2_ada_augment_recorded.json')
STRIDE = 7
PERCENTILES = (0.2, 0.7)
# One augmentation at a time (its constructor argument at strength 1), then the presets train.py offers.
SINGLE = ('xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac', 'brightness', 'contrast', 'lumaflip',
          'hue', 'saturation', 'imgfilter', 'noise', 'cutout')
CASES = {**{name: {name: 1} for name in SINGLE},
         'bg': dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1),
         'bgc': dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1,
                     lumaflip=1, hue=1, saturation=1),
         'bgcf': dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1,
                      lumaflip=1, hue=1, saturation=1, imgfilter=1),
         'bgcfnc': dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1,
                        lumaflip=1, hue=1, saturation=1, imgfilter=1, noise=1, cutout=1)}
# (every uniform draw, every Gaussian draw) for the training path: below 0.5 and above it (no flip, then a flip;
# quarter turns 1 and 3; shifts and angles of both signs), a Gaussian draw of each sign.
CONSTANT_DRAWS = ((0.3, -0.6), (0.8, 0.9))
# The ADA controller: its settings (train.py's defaults but a faster ada_kimg, so p visibly moves) and, per training
# step, the signs of D(real) one process reports. ADA_SIGNS walks r_t above and below the target, onto it exactly
# (sign 0: p stays) and pushes p against 0 (clamped there); it never pushes p past 1, where the two codes differ
# (README, "Where we differ").
ADA = dict(p=0.01, target=0.6, interval=4, ada_kimg=100, batch_size=64)
ADA_STEPS = 240

#----------------------------------------------------------------------------
# Shared by the recording and our side.

def input_images():
    """One fixed image [1, 3, 32, 32] in [-1, 1] with structure at every scale (a ramp plus seeded noise); 32x32 as
    CIFAR-10, since the reference's reflection padding needs more than 16 pixels."""
    generator = torch.Generator().manual_seed(7)
    ramp = torch.linspace(-0.8, 0.8, 32)
    images = ramp[None, None, :, None] * 0.5 + ramp[None, None, None, :] * 0.3
    images = images + torch.rand([1, 3, 32, 32], generator=generator) * 0.4 - 0.2
    return images.clamp(-1, 1).contiguous()


def _shape(size):
    """The shape of a torch.rand/randn call's positional arguments: (2, 3) or ([2, 3])."""
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (list, tuple, torch.Size)) else tuple(size)


def fixed_field(shape, dtype=None, device=None):
    """A deterministic stand-in for a Gaussian draw of `shape`: values in [-1, 1], different at every element."""
    count = int(np.prod(shape))
    values = torch.sin(torch.arange(count, dtype=torch.float64) * 0.731 + 0.2)
    return values.reshape(tuple(shape)).to(dtype=dtype or torch.float32, device=device)


@contextlib.contextmanager
def fixed_gaussian_draws():
    """Within: torch.randn and torch.randn_like return fixed_field (both codes draw noise's pixels through one of
    them; their other Gaussian draws are overridden by debug_percentile anyway)."""
    randn, randn_like = torch.randn, torch.randn_like

    def fixed_randn(*size, dtype=None, device=None, **_):
        return fixed_field(_shape(size), dtype, device)

    torch.randn = fixed_randn
    torch.randn_like = lambda tensor, **_: fixed_field(tensor.shape, tensor.dtype, tensor.device)
    try:
        yield
    finally:
        torch.randn, torch.randn_like = randn, randn_like


@contextlib.contextmanager
def constant_draws(uniform, gaussian):
    """Within: every torch.rand and rand_like returns `uniform`, every torch.randn and randn_like `gaussian`."""
    saved = torch.rand, torch.rand_like, torch.randn, torch.randn_like

    def filler(value):
        return (lambda *size, dtype=None, device=None, **_: torch.full(_shape(size), value, dtype=dtype or torch.float32, device=device),
                lambda tensor, **_: torch.full_like(tensor, value))
    (torch.rand, torch.rand_like), (torch.randn, torch.randn_like) = filler(uniform), filler(gaussian)
    try:
        yield
    finally:
        torch.rand, torch.rand_like, torch.randn, torch.randn_like = saved


def _pipe_at_full_p(pipe_class, kwargs):
    pipe = pipe_class(**kwargs)
    pipe.p.copy_(torch.ones([]))
    return pipe


def _strided(images):
    return [round(float(v), 7) for v in images.flatten()[::STRIDE]]


def random_path_outputs(pipe_class):
    """{case: {"uniform,gaussian": every STRIDE-th output value}} of `pipe_class` at p = 1, drawing its parameters as
    in training (no debug_percentile) with every draw constant (constant_draws)."""
    results = {}
    for case, kwargs in CASES.items():
        pipe = _pipe_at_full_p(pipe_class, kwargs)
        results[case] = {}
        for uniform, gaussian in CONSTANT_DRAWS:
            images = input_images()  # Outside: its seeded noise is a torch.rand draw too.
            with torch.no_grad(), constant_draws(uniform, gaussian):
                results[case][f'{uniform},{gaussian}'] = _strided(pipe(images))
    return results


def augment_outputs(pipe_class):
    """{case: {percentile: every STRIDE-th output value}} of `pipe_class` (ours or the reference's) at p = 1."""
    results = {}
    for case, kwargs in CASES.items():
        pipe = _pipe_at_full_p(pipe_class, kwargs)
        results[case] = {}
        for percentile in PERCENTILES:
            torch.manual_seed(0)
            with torch.no_grad(), (fixed_gaussian_draws() if kwargs.get('noise') else contextlib.nullcontext()):
                out = pipe(input_images(), debug_percentile=percentile)
            results[case][str(percentile)] = _strided(out)
    return results


def ada_signs(step):
    """The signs of D(real) one process reports at training step `step` (0-based): 10 values per step, of which
    the number of +1 is fixed per interval of ADA['interval'] steps (8 of 10 is r_t = 0.6, the target)."""
    interval = step // ADA['interval']
    positives = (10, 9, 5, 10, 9, 7, 10, 3, 9, 10, 6, 9, 10, 8, 2, 9)[interval % 16]
    if interval < 6:
        positives = 0  # r_t = -1: p falls onto 0 and stays there.
    elif interval in (20, 21):
        positives = 8  # r_t = target exactly: p stays.
    return [1.0] * positives + [-1.0] * (10 - positives)


def differences(ours, recorded):
    """{case: max |ours - recorded| over every percentile and value}."""
    return {case: max(float(np.max(np.abs(np.array(ours[case][pct]) - np.array(values))))
                      for pct, values in per_pct.items())
            for case, per_pct in recorded.items()}


def reference_ada_p(reference_dir):
    """p after every training step of ADA_STEPS, as the reference's training loop computes it."""
    from torch_utils import misc  # pylint: disable=import-outside-toplevel  # The reference's.
    path = os.path.join(reference_dir, 'training', 'training_loop.py')
    with open(path, encoding='utf-8-sig') as f:  # The file starts with a byte-order mark.
        tree = ast.parse(f.read())
    statements = [node for node in ast.walk(tree) if isinstance(node, ast.If)
                  and 'ada_stats' in ast.unparse(node.test) and 'ada_interval' in ast.unparse(node.test)]
    assert len(statements) == 1, f'expected one ADA statement in {path}, found {len(statements)}'
    adjust_p = compile(ast.Module(body=statements, type_ignores=[]), path, 'exec')

    class Signs:
        """Stands in for training_stats.Collector: the mean of the values reported since the last update()."""
        def __init__(self):
            self.reported, self.mean = [], float('nan')

        def update(self):
            self.mean, self.reported = float(np.mean(self.reported)), []

        def __getitem__(self, name):
            assert name == 'Loss/signs/real'
            return self.mean

    class Pipe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer('p', torch.tensor(float(ADA['p'])))  # float32, as the reference's AugmentPipe.

    scope = dict(np=np, misc=misc, ada_stats=Signs(), augment_pipe=Pipe(), device=torch.device('cpu'),
                 ada_target=ADA['target'], ada_interval=ADA['interval'], ada_kimg=ADA['ada_kimg'],
                 batch_size=ADA['batch_size'])
    trajectory = []
    for step in range(ADA_STEPS):
        scope['ada_stats'].reported += ada_signs(step)
        scope['batch_idx'] = step + 1  # The loop counts the step before it adjusts.
        exec(adjust_p, scope)  # pylint: disable=exec-used
        trajectory.append(float(scope['augment_pipe'].p))
    return trajectory


#----------------------------------------------------------------------------

def record(reference_dir):
    sys.path.insert(0, os.path.abspath(reference_dir))
    from training import augment as reference_augment  # pylint: disable=import-outside-toplevel
    return dict(source='NVlabs/stylegan2-ada-pytorch training/augment.py', torch=torch.__version__,
                stride=STRIDE, percentiles=list(PERCENTILES), outputs=augment_outputs(reference_augment.AugmentPipe),
                constant_draws=[list(pair) for pair in CONSTANT_DRAWS],
                random_path_outputs=random_path_outputs(reference_augment.AugmentPipe),
                ada_source='NVlabs/stylegan2-ada-pytorch training/training_loop.py (its ADA statement)', ada=ADA,
                ada_p=reference_ada_p(reference_dir))


if __name__ == '__main__':
    recording_main(__doc__.splitlines()[0], record, OUT)
