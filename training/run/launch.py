"""Start training processes: one process, N local processes (torch.multiprocessing) or under torchrun (env://)."""

import os
import tempfile

import torch

import dnnlib
from training.dataset import DatasetError
from training.run import preemption as run_preemption
from training.run import resume as run_resume
from training.run import run_dir as run_dirs

# Errors whose one-line message tells the user what to fix (a full disk, bad data, a bad --resume): train.py
# prints them without a traceback. A spawned rank leaves its message in the launch's temporary folder and
# exits with USER_ERROR_EXIT_CODE; the parent raises the lowest rank's message as UserErrorInRank, so the
# user reads it once, however many ranks met it.
USER_ERRORS = (dnnlib.util.WriteError, DatasetError, run_resume.ResumeError)
USER_ERROR_EXIT_CODE = 3


class UserErrorInRank(Exception):
    """A spawned rank stopped on one of USER_ERRORS; the message is that error's one line."""


def _error_file(temp_dir, rank):
    return os.path.join(temp_dir, f'error-rank{rank:04d}.txt')


def _first_rank_error(temp_dir, num_processes):
    for rank in range(num_processes):
        if os.path.isfile(_error_file(temp_dir, rank)):
            with open(_error_file(temp_dir, rank), encoding='utf-8') as f:
                return f.read()
    return 'a training process stopped on an error (see above)'


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
    try:
        _run(config, rank=local_rank, local_rank=local_rank)
    except USER_ERRORS as exc:
        with open(_error_file(temp_dir, local_rank), 'w', encoding='utf-8') as f:
            f.write(str(exc))
        raise SystemExit(USER_ERROR_EXIT_CODE) from None


def _run(config, rank, local_rank):
    """Train in this process; a preempted run exits with config.preempt_exit_code where that is not 0."""
    from training import training_loop  # pylint: disable=import-outside-toplevel
    device = torch.device('cuda', local_rank) if config.device == 'cuda' else torch.device('cpu')
    log_path = os.path.join(config.run_dir, 'log.txt') if rank == 0 else None
    with dnnlib.util.Logger(file_name=log_path, file_mode='a', should_flush=True):
        run = training_loop.training_loop(config, rank=rank, device=device)
    if run.preemption.agreed is not None and config.get('preempt_exit_code', 0):
        raise SystemExit(config.preempt_exit_code)


def _spawn(config):
    """One process per rank; signals to this parent are passed on to them, and their preemption exit code is ours."""
    torch.multiprocessing.set_start_method('spawn', force=True)
    with tempfile.TemporaryDirectory() as temp_dir:
        context = torch.multiprocessing.start_processes(_subprocess_fn, args=(config, temp_dir),
                                                        nprocs=config.num_processes, join=False, start_method='spawn')
        previous = run_preemption.forward_to(context.processes)
        try:
            while not context.join():
                pass
        except torch.multiprocessing.ProcessExitedException as exc:
            if exc.exit_code == USER_ERROR_EXIT_CODE:
                raise UserErrorInRank(_first_rank_error(temp_dir, config.num_processes)) from None
            if exc.exit_code != config.get('preempt_exit_code', 0):
                raise
            raise SystemExit(exc.exit_code) from None
        finally:
            run_preemption.restore_handlers(previous)


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
        _spawn(config)


def start(config, env=None):
    """Create the run directory and training_options.json (rank 0 only), then launch; returns the run dir."""
    env = os.environ if env is None else env
    ranks = torchrun_rank(env)
    config = dnnlib.EasyDict(config)
    if ranks is not None and ranks[0] != 0:
        config.run_dir = None  # Only rank 0 writes; the others never need the folder.
        launch(config, env)
        return None
    for path in run_dirs.remove_stale_temp_files(config.outdir):
        print(f'Removed {path}, left behind by a killed write', flush=True)
    config.run_dir = run_dirs.create_run_dir(config.outdir, config.run_desc)
    try:
        with run_dirs.run_lock(config.run_dir):
            run_dirs.write_json(os.path.join(config.run_dir, 'training_options.json'), config)
            print(f'Training in {config.run_dir}', flush=True)
            launch(config, env)
    except (*USER_ERRORS, UserErrorInRank):
        # A run refused before its first snapshot (a bad --resume, bad data) leaves nothing behind but its
        # options and log, which the one-line error says all of: remove the folder this call made.
        if run_dirs.remove_if_no_snapshot(config.run_dir):
            print(f'Removed {config.run_dir}: the run stopped before its first snapshot', flush=True)
        raise
    return config.run_dir
