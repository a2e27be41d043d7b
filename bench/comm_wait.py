"""Time a training step spends waiting on gradient communication: one flat all-reduce after backward vs buckets
started during backward (training/run/gradients.py), with N gloo (CPU) or NCCL (GPU) processes.

    python bench/comm_wait.py --processes=2 --device=cpu --res=32 --cbase=8192 --cmax=256 --steps=6

Each process runs the Gmain, Dmain and Dreg phases of a StyleGAN2 loss on its share of the batch; the
reducer's finish() time is the wait (with overlap=False it is the whole all-reduce). Prints one JSON line per
mode (rank 0's medians).
"""

import json
import os
import statistics
import sys
import tempfile
import time

import click
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from torch_utils.ops import paths as op_paths  # noqa: E402
from training.loss import StyleGAN2Loss  # noqa: E402
from training.networks import Discriminator, Generator  # noqa: E402
from training.run.gradients import GradientReducer  # noqa: E402

PHASES = ('Gmain', 'Dmain', 'Dreg')


def _worker(rank, opts, init_file, out_file):
    torch.set_num_threads(max(1, torch.get_num_threads() // opts['processes']))
    device = torch.device('cuda', rank) if opts['device'] == 'cuda' else torch.device('cpu')
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    torch.distributed.init_process_group('nccl' if device.type == 'cuda' else 'gloo', init_method=f'file://{init_file}',
                                         rank=rank, world_size=opts['processes'])
    torch.manual_seed(0)
    res, channels = opts['res'], dict(channel_base=opts['cbase'], channel_max=opts['cmax'])
    G = Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3, mapping_kwargs=dict(num_layers=2),
                  synthesis_kwargs=dict(channels, architecture=opts['g_arch'])).to(device).train().requires_grad_(False)
    D = Discriminator(c_dim=0, img_resolution=res, img_channels=3, **channels).to(device).train().requires_grad_(False)
    loss = StyleGAN2Loss(device, G, D, pl_weight=0)
    per_rank = opts['batch'] // opts['processes']
    results = {}
    for overlap in (False, True):
        reducers = {phase: GradientReducer(G if phase.startswith('G') else D, opts['processes'], overlap=overlap)
                    for phase in PHASES}  # One per phase, as the training loop has: each learns its own order.
        step_times, waits = [], []
        for step in range(opts['warmup'] + opts['steps']):
            real = torch.randn([per_rank, 3, res, res], device=device)
            z = torch.randn([per_rank, 512], device=device)
            c = torch.zeros([per_rank, 0], device=device)
            start, wait = time.perf_counter(), 0.0
            for phase in PHASES:
                module, reducer = (G if phase.startswith('G') else D), reducers[phase]
                module.requires_grad_(True)
                before = reducer.wait_seconds
                loss.accumulate_gradients(phase, real, c, z, c, gain=1, cur_nimg=0, before_last_backward=reducer.arm)
                reducer.finish()
                wait += reducer.wait_seconds - before
                module.requires_grad_(False)
                for param in module.parameters():
                    param.grad = None
            if device.type == 'cuda':
                torch.cuda.synchronize()
            if step >= opts['warmup']:
                step_times.append(time.perf_counter() - start)
                waits.append(wait)
        for reducer in reducers.values():
            reducer.close()
        results['overlap' if overlap else 'flat'] = dict(step_s=statistics.median(step_times), wait_s=statistics.median(waits))
    if rank == 0:
        torch.save(results, out_file)
    torch.distributed.destroy_process_group()


@click.command()
@click.option('--processes', type=click.IntRange(min=2), default=2, show_default=True)
@click.option('--device', type=click.Choice(['cpu', 'cuda']), default='cpu', show_default=True)
@click.option('--res', type=int, default=32, show_default=True)
@click.option('--cbase', type=int, default=8192, show_default=True)
@click.option('--cmax', type=int, default=256, show_default=True)
@click.option('--g-arch', default='squeeze', show_default=True)
@click.option('--batch', type=int, default=8, show_default=True, help='Global batch')
@click.option('--steps', type=int, default=6, show_default=True)
@click.option('--warmup', type=int, default=2, show_default=True)
def main(**opts):
    """Median step time and communication wait, without and with overlap."""
    with tempfile.TemporaryDirectory() as tmp:
        out_file = os.path.join(tmp, 'result.pt')
        torch.multiprocessing.start_processes(_worker, args=(opts, os.path.join(tmp, 'init'), out_file),
                                              nprocs=opts['processes'], start_method='spawn')
        results = torch.load(out_file, weights_only=True)
    ops = op_paths.op_paths(opts['device'])  # What the workers' steps ran (the same checks, in this process).
    for mode, values in results.items():
        print(json.dumps(dict(mode=mode, **{k: round(v, 4) for k, v in values.items()}, **opts, ops=ops,
                              torch=torch.__version__, date=time.strftime('%Y-%m-%d'))))


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
