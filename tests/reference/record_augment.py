"""Record what stylegan2-ada-pytorch's AugmentPipe computes, so tests and docs can hold ours to it without it.

    python tests/reference/record_augment.py --reference=/path/to/stylegan2-ada-pytorch --commit=SHA

Runs the reference's training/augment.py (CPU, its plain-PyTorch op paths) on one fixed batch for every case of
CASES at every percentile of PERCENTILES, with `debug_percentile` set: every enabled augmentation is then
applied with its parameter at that percentile of its distribution, so the output does not depend on the order in
which random numbers are drawn (the codes draw in different orders). Noise is left out: its pixels are random
draws whatever the percentile. Writes stylegan2_ada_augment_recorded.json beside this file (every STRIDE-th
output value). scripts/augment_parity.py and tests/test_reference_parity.py compute the same with our pipe, from
the functions below. Nothing from the reference is committed or read at test time: only these numbers.
"""

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
          'hue', 'saturation', 'imgfilter', 'cutout')
CASES = {**{name: {name: 1} for name in SINGLE},
         'bg': dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1),
         'bgc': dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1,
                     lumaflip=1, hue=1, saturation=1),
         'bgcf': dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1,
                      lumaflip=1, hue=1, saturation=1, imgfilter=1)}

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


def augment_outputs(pipe_class):
    """{case: {percentile: every STRIDE-th output value}} of `pipe_class` (ours or the reference's) at p = 1."""
    results = {}
    for case, kwargs in CASES.items():
        pipe = pipe_class(**kwargs)
        pipe.p.copy_(torch.ones([]))
        results[case] = {}
        for percentile in PERCENTILES:
            torch.manual_seed(0)
            with torch.no_grad():
                out = pipe(input_images(), debug_percentile=percentile)
            results[case][str(percentile)] = [round(float(v), 7) for v in out.flatten()[::STRIDE]]
    return results


def differences(ours, recorded):
    """{case: max |ours - recorded| over every percentile and value}."""
    return {case: max(float(np.max(np.abs(np.array(ours[case][pct]) - np.array(values))))
                      for pct, values in per_pct.items())
            for case, per_pct in recorded.items()}

#----------------------------------------------------------------------------

def record(reference_dir):
    sys.path.insert(0, os.path.abspath(reference_dir))
    from training import augment as reference_augment  # pylint: disable=import-outside-toplevel
    return dict(source='NVlabs/stylegan2-ada-pytorch training/augment.py', torch=torch.__version__,
                stride=STRIDE, percentiles=list(PERCENTILES), outputs=augment_outputs(reference_augment.AugmentPipe))


if __name__ == '__main__':
    recording_main(__doc__.splitlines()[0], record, OUT)
