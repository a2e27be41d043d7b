"""Benchmark: time to compute fid50k_full for a generator (256x256 by default), extrapolated from a shorter run."""

# python bench/metrics.py --res=256 --num=2000 --detector-dir=~/detectors
#
# The full metric generates 50k images and runs Inception on them and on the dataset (the dataset pass is
# cached after the first run). This script times the two per-image costs on freshly initialised networks
# (the weights do not change the cost) and prints one JSON line:
#   generator_ms_per_image, detector_ms_per_image (null when the Inception file is not available offline),
#   fid50k_full_minutes_estimate (generator + detector for 50k images; null without the detector).

import json
import os
import platform
import sys
import time

import click
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from metrics import detectors  # noqa: E402
from metrics import metric_utils  # noqa: E402
from torch_utils import misc  # noqa: E402
from torch_utils.ops import paths as op_paths  # noqa: E402


def build_generator(res, device):
    """A stylegan2-ada 'paper256'-sized generator (channel_base 16384, channel_max 512, 2 mapping layers)."""
    from training import networks
    return networks.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
                              mapping_kwargs=dict(num_layers=2),
                              synthesis_kwargs=dict(channel_base=16384, channel_max=512, num_fp16_res=4 if device.type == 'cuda' else 0,
                                                    conv_clamp=256 if device.type == 'cuda' else None)).eval().requires_grad_(False).to(device)


def _synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_per_image(step, num, batch, device):
    """Milliseconds per image of `step(batch)`, after one warm-up call."""
    step(batch)
    _synchronize(device)
    start = time.perf_counter()
    done = 0
    while done < num:
        step(batch)
        done += batch
    _synchronize(device)
    return (time.perf_counter() - start) / done * 1e3


@click.command()
@click.option('--res',          help='Generator resolution', type=int, default=256, show_default=True)
@click.option('--num',          help='Images to time (the estimate scales to 50k)', type=int, default=256, show_default=True)
@click.option('--batch',        help='Images per batch', type=int, default=32, show_default=True)
@click.option('--device',       help='Device [default: cuda when available]', default=None)
@click.option('--detector-dir', help='Folder holding inception-2015-12-05.pt', default=None)
def main(res, num, batch, device, detector_dir):
    """Time fid50k_full's per-image costs and print one JSON line."""
    device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    misc.set_tf32(False)  # As calc_metrics.py computes the scores.
    G = build_generator(res, device)
    with torch.no_grad():
        def generate(n):
            z = torch.randn([n, G.z_dim], device=device)
            return metric_utils.generator_images_to_uint8(G(z, torch.zeros([n, 0], device=device), noise_mode='const'))
        generator_ms = time_per_image(generate, num, batch, device)

        detector_ms = None
        try:
            inception, _digest = detectors.get_detector(detectors.INCEPTION, device=device, detector_dir=detector_dir)
        except detectors.DetectorUnavailableError as error:
            print(f'detector not timed: {error}', file=sys.stderr)
        else:
            images = generate(batch)
            detector_ms = time_per_image(lambda n: inception(images[:n], return_features=True), num, batch, device)

    estimate = None if detector_ms is None else (generator_ms + detector_ms) * 50000 / 1e3 / 60
    print(json.dumps(dict(
        benchmark='fid50k_full', res=res, images_timed=num, batch=batch, device=str(device),
        device_name=torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or platform.machine(),
        threads=torch.get_num_threads(), torch=torch.__version__, tf32=False, ops=op_paths.op_paths(device),
        generator_ms_per_image=round(generator_ms, 3),
        detector_ms_per_image=None if detector_ms is None else round(detector_ms, 3),
        fid50k_full_minutes_estimate=None if estimate is None else round(estimate, 2),
    )))


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
