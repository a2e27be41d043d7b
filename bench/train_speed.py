"""Training speed and memory: sec/kimg and peak memory per generator architecture and D regulariser."""

# python bench/train_speed.py --cfg=cifar --res=32 --g-arch=skip,squeeze --reg-type=none,ggdr,glead --device=cpu
# Builds a random-image dataset of the requested resolution in a temporary folder, resolves the config
# exactly as train.py does, and times training steps (all phases, lazy regularisation included, EMA)
# after warm-up steps. Prints one JSON line per (architecture, regulariser); each runs in a fresh process
# so that its peak memory is its own. GLeaD needs the LPIPS weights: --detector-dir, or --random-lpips
# for stand-in weights of the same shapes (timing does not depend on their values). On CUDA it runs with
# SQUEEZEGAN_OPS=cuda unless that is set, and each line names the path each op took ("ops").

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import click
import numpy as np
import PIL.Image
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # The metrics package, not bench/metrics.py.

from torch_utils import custom_ops  # noqa: E402
from torch_utils.ops import paths as op_paths  # noqa: E402
from training.cli import config as training_config  # noqa: E402
from training import training_loop  # noqa: E402


def write_random_images(folder, num_images, resolution):
    """A dataset folder of random RGB PNGs; speed does not depend on what the images show."""
    os.makedirs(folder)
    rnd = np.random.RandomState(0)
    for i in range(num_images):
        pixels = rnd.randint(0, 256, size=[resolution, resolution, 3], dtype=np.uint8)
        PIL.Image.fromarray(pixels).save(os.path.join(folder, f'img{i:05d}.png'))
    return folder


def write_random_lpips_weights(folder):
    """Random weights under the public LPIPS file and key names (same shapes, so the same cost)."""
    from metrics import lpips  # pylint: disable=import-outside-toplevel
    os.makedirs(folder)
    torch.save(lpips.AlexNetFeatures().state_dict(), os.path.join(folder, lpips.ALEXNET.file_name))
    torch.save({key: torch.rand(shape) for key, shape in lpips.LINEAR_SHAPES.items()},
               os.path.join(folder, lpips.LPIPS_ALEX.file_name))
    return folder


def measure(options, steps, warmup, device):
    """(sec/kimg, peak memory GiB, G parameter count) for `steps` timed training steps."""
    config = training_config.resolve_config(options, env={}, cuda_available=torch.cuda.is_available())
    config.run_dir = None
    config.grid_size = (1, 1)
    run = training_loop.build_run(config, rank=0, device=torch.device(device))
    for _ in range(warmup):
        run.train_step()
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        run.train_step()
    if device == 'cuda':
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2 ** 30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB on Linux.
    seconds = time.perf_counter() - start
    kimg = steps * config.batch_size / 1000
    params = sum(p.numel() for p in run.nets.G.parameters())
    return seconds / kimg, peak, params, config


@click.command()
@click.option('--cfg',      help='Preset', default='paper256', show_default=True)
@click.option('--res',      help='Image resolution of the synthetic dataset', type=int, default=256, show_default=True)
@click.option('--g-arch',   help='Comma-separated generator architectures', default='skip,squeeze', show_default=True)
@click.option('--device',   help='cpu or cuda', type=click.Choice(['cpu', 'cuda']), default='cuda' if torch.cuda.is_available() else 'cpu')
@click.option('--batch',    help='Override the preset batch', type=int)
@click.option('--cbase',    help='Override the channel base', type=int)
@click.option('--cmax',     help='Override the channel maximum', type=int)
@click.option('--steps',    help='Timed training steps', type=int, default=8, show_default=True)
@click.option('--warmup',   help='Untimed steps first', type=int, default=2, show_default=True)
@click.option('--aug',      help='Augmentation mode', default='noaug', show_default=True)
@click.option('--reg-type', help='Comma-separated D regularisers (none, ggdr, glead)', default='none', show_default=True)
@click.option('--detector-dir', help='Folder with the LPIPS weight files (GLeaD)', metavar='DIR')
@click.option('--fp32',     help='fp32 throughout (default: on the CPU, where fp16 layers are only emulated)', type=bool, default=None)
@click.option('--random-lpips', help='GLeaD with random stand-in LPIPS weights (for timing only)', is_flag=True)
def main(cfg, res, g_arch, device, batch, cbase, cmax, steps, warmup, aug, reg_type, detector_dir, fp32, random_lpips):
    """Time training steps of a preset for each generator architecture and regulariser."""
    if device == 'cuda':
        os.environ.setdefault(custom_ops.OPS_ENV, 'cuda')  # Timed on the kernels, or stopped with an error.
    archs, regs = g_arch.split(','), reg_type.split(',')
    if len(archs) > 1 or len(regs) > 1:
        args = [arg for arg in sys.argv[1:] if not arg.startswith(('--g-arch=', '--reg-type='))]
        for arch in archs:  # Each child gets one of each.
            for reg in regs:
                subprocess.run([sys.executable, os.path.abspath(__file__), *args, f'--g-arch={arch}', f'--reg-type={reg}'],
                               check=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = write_random_images(os.path.join(tmp, f'random{res}'), num_images=64, resolution=res)
        if random_lpips:
            detector_dir = write_random_lpips_weights(os.path.join(tmp, 'lpips'))
        for arch in archs:
            options = dict(outdir=os.path.join(tmp, 'runs'), data=data, cfg=cfg, g_arch=arch, device=device, batch=batch,
                           cbase=cbase, cmax=cmax, aug=aug, metrics='none', workers=0 if device == 'cpu' else 3,
                           fp32=(device == 'cpu') if fp32 is None else fp32, reg_type=regs[0], detector_dir=detector_dir)
            sec_per_kimg, peak, params, config = measure(options, steps, warmup, device)
            print(json.dumps(dict(cfg=cfg, res=res, g_arch=arch, reg_type=regs[0], device=device, batch=config.batch_size,
                                  num_fp16_res=config.G_kwargs.synthesis_kwargs.num_fp16_res, tf32=config.allow_tf32,
                                  batch_gpu=config.batch_gpu, G_params=params, sec_per_kimg=round(sec_per_kimg, 2),
                                  peak_mem_gib=round(peak, 3), steps=steps, ops=op_paths.op_paths(device),
                                  gpu=torch.cuda.get_device_name() if device == 'cuda' else platform.processor() or platform.machine(),
                                  threads=torch.get_num_threads(), torch=torch.__version__,
                                  date=time.strftime('%Y-%m-%d'))), flush=True)


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
