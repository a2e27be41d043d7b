"""Device-to-host synchronisations per training step between ticks: zero, but for the augmentation padding.

# python bench/host_syncs.py --device=cuda      (SQUEEZEGAN_OPS=cuda unless set: the kernels, or an error)
# python bench/host_syncs.py --device=cpu
Trains a small ADA run (bgc pipeline, p adjusted every step, every regularisation phase within the steps) on
random images and counts, over --steps steps after warm-up:
- host reads: every tensor value that reached Python (torch_utils/host_reads.py), on any device;
- on CUDA, also the synchronisations PyTorch itself reports under torch.cuda.set_sync_debug_mode('warn')
  (the 'error' mode would stop at the one allowed read), with where they came from.
The allowed reads are the augmentation pipe's padding, one per geometric resample. Prints one JSON line and
exits 1 when anything else read from the device.
"""

import collections
import json
import os
import sys
import tempfile
import time
import warnings

import click
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.train_speed import write_random_images  # noqa: E402
from torch_utils.host_reads import HostReads, optimizer_step_counters  # noqa: E402
from torch_utils.ops import paths as op_paths  # noqa: E402
from training import training_loop  # noqa: E402
from training.augment import pipe as augment_pipe  # noqa: E402
from training.cli import config as training_config  # noqa: E402


def count(device, res, steps, warmup):
    with tempfile.TemporaryDirectory() as tmp:
        data = write_random_images(os.path.join(tmp, f'random{res}'), num_images=32, resolution=res)
        options = dict(outdir=os.path.join(tmp, 'runs'), data=data, cfg='auto', device=device, batch=8, cbase=4096,
                       cmax=64, map=2, aug='ada', augpipe='bgc', metrics='none', workers=0, fp32=(device == 'cpu'))
        config = training_config.resolve_config(options, env={}, cuda_available=torch.cuda.is_available())
        config.update(run_dir=None, grid_size=(1, 1), ada_interval=1, G_reg_interval=2, D_reg_interval=2, augment_p=0.5)
        run = training_loop.build_run(config, rank=0, device=torch.device(device))
        for _ in range(warmup):
            run.train_step()
        resamples = []
        resample = run.nets.augment_pipe._resample  # pylint: disable=protected-access
        run.nets.augment_pipe._resample = lambda *args, **kwargs: resamples.append(1) or resample(*args, **kwargs)  # pylint: disable=protected-access
        cuda_syncs = collections.Counter()
        with warnings.catch_warnings(record=True) as caught, HostReads(ignore=optimizer_step_counters(run.optimizers.values())) as reads:
            warnings.simplefilter('always')
            if device == 'cuda':
                torch.cuda.synchronize()
                torch.cuda.set_sync_debug_mode('warn')
            try:
                for _ in range(steps):
                    run.train_step()
                    run.preemption.requested()
            finally:
                if device == 'cuda':
                    torch.cuda.set_sync_debug_mode('default')
        for warning in caught:  # PyTorch warns from the Python line that asked for the synchronising operation.
            if 'synchroniz' in str(warning.message):
                cuda_syncs[f'{os.path.relpath(warning.filename)}:{warning.lineno}'] += 1
        pipe_reads = reads.inside(augment_pipe.__file__)
        others = {f'{os.path.relpath(file)}:{line} {name}': n for (name, file, line), n in reads.outside(augment_pipe.__file__).items()}
        return dict(device=torch.cuda.get_device_name() if device == 'cuda' else 'cpu', ops=op_paths.op_paths(device),
                    steps=steps, host_reads=reads.total(), allowed_pipe_reads=pipe_reads, geometric_resamples=len(resamples),
                    other_reads=others, cuda_syncs=(sum(cuda_syncs.values()) if device == 'cuda' else None),
                    cuda_sync_sites=dict(cuda_syncs), torch=torch.__version__, date=time.strftime('%Y-%m-%d'))


@click.command()
@click.option('--device', type=click.Choice(['cuda', 'cpu']), default='cuda' if torch.cuda.is_available() else 'cpu')
@click.option('--res', type=click.IntRange(min=8), default=32, show_default=True)
@click.option('--steps', type=click.IntRange(min=1), default=8, show_default=True)
@click.option('--warmup', type=click.IntRange(min=1), default=2, show_default=True)
def main(device, res, steps, warmup):
    """Count host reads and CUDA synchronisations in training steps between ticks."""
    if device == 'cuda':
        if not torch.cuda.is_available():
            raise click.ClickException('--device=cuda: no CUDA device is available')
        os.environ.setdefault('SQUEEZEGAN_OPS', 'cuda')
    result = count(device, res, steps, warmup)
    print(json.dumps(result), flush=True)
    unexpected = result['other_reads'] or result['allowed_pipe_reads'] != result['geometric_resamples'] or \
        (result['cuda_syncs'] is not None and result['cuda_syncs'] > result['geometric_resamples'])
    sys.exit(1 if unexpected else 0)


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
