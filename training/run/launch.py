"""Start training processes: one process, N local processes (torch.multiprocessing) or under torchrun (env://)."""

import os
import tempfile

import torch

import dnnlib
from training.run import run_dir as run_dirs


def torchrun_rank(env):
    """(rank, local_rank, world_size) when started by torchrun (RANK/WORLD_SIZE/LOCAL_RANK set), else None."""
    if 'RANK' not in env or 'WORLD_SIZE' not in env:
        return None
    return int(env['RANK']), int(env.get('LOCAL_RANK', env['RANK'])), int(env['WORLD_SIZE'])


def _init_process_group(config, rank, local_rank, init_method):
    """Join the process group: NCCL on CUDA (one device per local rank), gloo on CPU."""
    if config.device == 'cuda':
        torch.cuda.set_device(local_rank)
    backend = 'nccl' if config.device == 'cuda' else 'gloo'
    torch.distributed.init_process_group(backend=backend, init_method=init_method, rank=rank,
                                         world_size=config.num_processes)


def _subprocess_fn(local_rank, config, temp_dir):
    """Entry point of one local process started by torch.multiprocessing.spawn."""
    init_file = os.path.abspath(os.path.join(temp_dir, '.torch_distributed_init'))
    _init_process_group(config, local_rank, local_rank, f'file://{init_file}')
    _run(config, rank=local_rank, local_rank=local_rank)


def _run(config, rank, local_rank):
    from training import training_loop  # pylint: disable=import-outside-toplevel
    device = torch.device('cuda', local_rank) if config.device == 'cuda' else torch.device('cpu')
    log_path = os.path.join(config.run_dir, 'log.txt') if rank == 0 else None
    with dnnlib.util.Logger(file_name=log_path, file_mode='a', should_flush=True):
        training_loop.training_loop(config, rank=rank, device=device)


def launch(config, env=None):
    """Run training for `config` (with config.run_dir set) in this process, in spawned ones, or as a torchrun rank."""
    env = os.environ if env is None else env
    ranks = torchrun_rank(env)
    if ranks is not None:
        rank, local_rank, _world = ranks
        if config.num_processes > 1:
            _init_process_group(config, rank, local_rank, 'env://')
        _run(config, rank=rank, local_rank=local_rank)
    elif config.num_processes == 1:
        _run(config, rank=0, local_rank=0)
    else:
        torch.multiprocessing.set_start_method('spawn', force=True)
        with tempfile.TemporaryDirectory() as temp_dir:
            torch.multiprocessing.spawn(fn=_subprocess_fn, args=(config, temp_dir), nprocs=config.num_processes)


def start(config, env=None):
    """Create the run directory and training_options.json (rank 0 only), then launch; returns the run dir."""
    env = os.environ if env is None else env
    ranks = torchrun_rank(env)
    config = dnnlib.EasyDict(config)
    if ranks is None or ranks[0] == 0:
        config.run_dir = run_dirs.create_run_dir(config.outdir, config.run_desc)
        run_dirs.write_json(os.path.join(config.run_dir, 'training_options.json'), config)
        print(f'Training in {config.run_dir}', flush=True)
    else:
        config.run_dir = None  # Only rank 0 writes; the others never need the folder.
    launch(config, env)
    return config.run_dir
