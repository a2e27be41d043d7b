"""Record how GGDR's augmentation pipe moves G's feature maps, so tests can hold ours to it without it.

    python tests/reference/record_ggdr_augment.py --reference=/path/to/GGDR --commit=SHA

naver-ai/GGDR augments the G features its regulariser targets with `AugmentPipeGFeat` (training/augment.py; EzioBy/glead
ships the same class): the images' geometric draws, at each feature map's own size, resampled with bilinear instead
of wavelet upsampling. This runs that class on the fixed image of record_augment.py and fixed feature maps at 8x8,
16x16 and 32x32, for every geometric augmentation alone and the bgc preset, at p = 1 with `debug_percentile` (the
draws do not depend on the order the codes draw in) and at p = 0 (no draw applies, yet the features are resampled).
Writes ggdr_augment_recorded.json beside this file (every STRIDE-th value of each moved feature map);
tests/test_reference_parity.py computes the same with our pipe. Nothing from the reference is committed or read at
test time: only these numbers.
"""

import os
import sys

import torch

sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # After the reference's.
from tests.reference import recording_main  # noqa: E402
from tests.reference.record_augment import PERCENTILES, input_images  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'ggdr_augment_recorded.json')
FEATURE_SIZES = (8, 16, 32)
STRIDE = 29
_GEOMETRIC = ('xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac')
CASES = {**{name: {name: 1} for name in _GEOMETRIC},
         'bgc': dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1,
                     lumaflip=1, hue=1, saturation=1)}
SETTINGS = {**{str(percentile): dict(p=1.0, debug_percentile=percentile) for percentile in PERCENTILES},
            'p0': dict(p=0.0, debug_percentile=None)}

#----------------------------------------------------------------------------
# Shared by the recording and our side.

def input_features():
    """{size: [2, 2, size, size]} seeded feature maps (white noise: what a resampling filter changes most)."""
    generator = torch.Generator().manual_seed(11)
    return {size: torch.randn([2, 2, size, size], generator=generator) for size in FEATURE_SIZES}


def moved_features(move):
    """{case: {setting: {size: every STRIDE-th value}}}; move(kwargs, p, images, features, debug_percentile) returns
    the moved {size: map} for one construction of the pipe with kwargs."""
    results = {}
    for case, kwargs in CASES.items():
        results[case] = {}
        for setting, how in SETTINGS.items():
            torch.manual_seed(0)
            images = input_images().repeat(2, 1, 1, 1)
            with torch.no_grad():
                moved = move(kwargs, how['p'], images, input_features(), how['debug_percentile'])
            results[case][setting] = {str(size): [round(float(v), 7) for v in moved[size].flatten()[::STRIDE]]
                                      for size in FEATURE_SIZES}
    return results

#----------------------------------------------------------------------------

def record(reference_dir):
    sys.path.insert(0, os.path.abspath(reference_dir))
    from training import augment as reference_augment  # pylint: disable=import-outside-toplevel

    def move(kwargs, p, images, features, debug_percentile):
        pipe = reference_augment.AugmentPipeGFeat(**kwargs)
        pipe.p.copy_(torch.tensor(p))
        return pipe(images, features, debug_percentile=debug_percentile)[1]
    return dict(source='naver-ai/GGDR training/augment.py (AugmentPipeGFeat)', torch=torch.__version__, stride=STRIDE,
                features=moved_features(move))


if __name__ == '__main__':
    recording_main(__doc__.splitlines()[0], record, OUT)
