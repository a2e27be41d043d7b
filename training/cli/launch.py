"""Start training processes: one process, N local processes (spawned) or under torchrun (env://), and end them cleanly.

The spawned-ranks machinery (spawn_ranks, run_guarded, rank_failure) also runs calc_metrics.py --gpus=N."""

# Every way a multi-process run ends is handled here, so that none of them hangs or prints a traceback:
# - done or preempted: each rank destroys its process group and exits normally;
# - an error a user can act on (USER_ERRORS: a full disk, bad data, a bad --resume, a NaN loss, a kernel
#   that SQUEEZEGAN_OPS=cuda demands but cannot be used): the rank
#   leaves its one-line message in the launch's temporary folder and exits at once;
# - any other exception: the same, with the traceback, which the parent appends to the run's log.txt;
# - killed (SIGKILL, the OOM killer, a segfault): nothing to write, the parent sees the signal.
# The parent watches its ranks; at the first one that ends badly it kills the others (they would only wait
# in a collective for a peer that is gone; snapshots are written atomically, so a kill never leaves a
# partial one) and raises one RankFailure line naming the rank and how it ended. Under torchrun the elastic
# agent does the watching; a lost peer across nodes ends at --dist-timeout instead of hanging.

import datetime
import json
import multiprocessing.connection
import os
import signal
import sys
import tempfile
import time
import traceback

import torch

import dnnlib
from torch_utils import custom_ops
from training.dataset import DatasetError
from training import training_loop
from training.loss import NonFiniteLossError
from training.run import preemption as run_preemption
from training.run import resume as run_resume
from training.cli import run_dir as run_dirs

# Errors whose one-line message tells the user what to fix: train.py prints them without a traceback, and
# the parent of spawned ranks reports the first rank's message once, however many ranks met it.
USER_ERRORS = (dnnlib.util.WriteError, DatasetError, run_resume.ResumeError, NonFiniteLossError,
               custom_ops.KernelUnavailableError)
RANK_ERROR_EXIT_CODE = 3    # A spawned rank that stopped on an exception (its message is in its error file).


class UserErrorInRank(Exception):
    """A spawned rank stopped on one of USER_ERRORS; the message is that error's one line."""


class RankFailure(Exception):
    """A spawned rank crashed, was killed or exited with an unexpected code; the message says which and how."""

#----------------------------------------------------------------------------
# Ranks.

def torchrun_rank(env):
    """(rank, local_rank, world_size) when started by torchrun (RANK/WORLD_SIZE/LOCAL_RANK set), else None."""
    if 'RANK' not in env or 'WORLD_SIZE' not in env:
        return None
    return int(env['RANK']), int(env.get('LOCAL_RANK', env['RANK'])), int(env['WORLD_SIZE'])


def _init_process_group(config, rank, local_rank, init_method):
    """Join the process group: NCCL on CUDA (one device per local rank), gloo on CPU; collectives time out
    after config.dist_timeout seconds."""
    if config.device == 'cuda':
        torch.cuda.set_device(local_rank)
    backend = 'nccl' if config.device == 'cuda' else 'gloo'
    timeout = datetime.timedelta(seconds=config.dist_timeout)
    torch.distributed.init_process_group(backend=backend, init_method=init_method, rank=rank,
                                         world_size=config.num_processes, timeout=timeout)


def _destroy_process_group():
    """Leave the process group, so that its threads end before the interpreter does (else: SIGABRT at exit)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _run(config, rank, local_rank):
    """Train in this process; a preempted run exits with config.preempt_exit_code where that is not 0."""
    device = torch.device('cuda', local_rank) if config.device == 'cuda' else torch.device('cpu')
    log_path = os.path.join(config.run_dir, 'log.txt') if rank == 0 else None
    with dnnlib.util.Logger(file_name=log_path, file_mode='a', should_flush=True):
        run = training_loop.training_loop(config, rank=rank, device=device)
    return config.get('preempt_exit_code', 0) if run.preemption.agreed is not None else 0

#----------------------------------------------------------------------------
# Spawned ranks and their parent.

def _error_file(temp_dir, rank):
    return os.path.join(temp_dir, f'error-rank{rank:04d}.json')


def _write_rank_error(temp_dir, rank, exc, user_error):
    """Leave the rank's one-line message (and, for a crash, its traceback) for the parent; atomic."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if user_error:
        message = str(exc).strip()
    else:
        message = f'{type(exc).__name__}: {lines[0]}' if lines else type(exc).__name__
    record = dict(time=time.time(), user_error=user_error, message=message,
                  traceback=None if user_error else traceback.format_exc())
    path = _error_file(temp_dir, rank)
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
        json.dump(record, f)
    os.replace(path + '.tmp', path)


def _read_rank_error(temp_dir, rank):
    try:
        with open(_error_file(temp_dir, rank), encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _exit_at_once(code):
    """Leave without interpreter teardown: a rank that failed may hold collectives its peers never finish."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)  # pylint: disable=protected-access


def init_method(temp_dir):
    """The rendezvous of spawned ranks: a file in their parent's temporary folder."""
    return 'file://' + os.path.abspath(os.path.join(temp_dir, '.torch_distributed_init'))


def run_guarded(rank, temp_dir, work, user_errors, interrupted):
    """Body of a spawned rank: work() -> exit code; then leave the process group and exit at once. On an exception,
    leave its one-line message (a crash's with the traceback) for the parent and exit with RANK_ERROR_EXIT_CODE;
    `user_errors` are the exception types whose message alone tells the user what to do. `interrupted` is the
    message for Ctrl-C (KeyboardInterrupt)."""
    try:
        code = work()
    except KeyboardInterrupt:
        _write_rank_error(temp_dir, rank, interrupted, user_error=True)
        _exit_at_once(RANK_ERROR_EXIT_CODE)
    except BaseException as exc:  # pylint: disable=broad-except
        _write_rank_error(temp_dir, rank, exc, user_error=isinstance(exc, user_errors))
        _exit_at_once(RANK_ERROR_EXIT_CODE)
    _destroy_process_group()
    _exit_at_once(code or 0)


def _rank_main(rank, config, temp_dir):
    """Entry point of one spawned training rank: train, then leave the group; on any exception, report it and exit at once."""
    def train():
        _init_process_group(config, rank, rank, init_method(temp_dir))
        return _run(config, rank=rank, local_rank=rank)
    # Ctrl-C lands here only before the preemption handlers were installed.
    run_guarded(rank, temp_dir, train, USER_ERRORS, interrupted='interrupted before training started')


def _how_it_ended(exitcode):
    if exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else f'signal {-exitcode}'
        hint = ' (the kernel\'s out-of-memory killer sends it)' if -exitcode == signal.SIGKILL else ''
        return f'was killed by {name}{hint}'
    return f'exited with code {exitcode}'


def _watch(processes, ended_badly):
    """Wait until every process has ended well, or one has not (`ended_badly(index)`); returns that one's index or None.

    At the first bad end, the others are killed at once and reaped.
    """
    alive = {process.sentinel: index for index, process in enumerate(processes)}
    failed = None
    while alive and failed is None:
        for sentinel in multiprocessing.connection.wait(list(alive)):
            index = alive.pop(sentinel)
            processes[index].join()
            if failed is None and ended_badly(index):
                failed = index
    for process in processes:
        if process.is_alive():
            process.kill()
    for process in processes:
        process.join()
    return failed


def rank_failure(processes, failed, temp_dir, what, keep_traceback, kill_hint=''):
    """The exception that tells the user how spawned ranks ended when rank `failed` ended unexpectedly: the first
    rank's user error as it is (UserErrorInRank), else a RankFailure line naming `what` ('training process'), the
    rank and how it ended. keep_traceback(text) stores a crash's traceback and returns where (' (traceback in
    PATH)'); kill_hint ends the line of a rank that was killed."""
    errors = {rank: _read_rank_error(temp_dir, rank) for rank in range(len(processes))}
    if processes[failed].exitcode < 0 or errors[failed] is None:  # Killed (or exited) without an error of its own.
        first = failed
    else:  # Peers of a failed rank may fail too (a broken collective): the earliest error is the cause.
        first = min((rank for rank in errors if errors[rank] is not None), key=lambda rank: errors[rank]['time'])
    error = errors.get(first) if processes[first].exitcode >= 0 else None
    if error is not None and error['user_error']:
        return UserErrorInRank(error['message'])
    if error is not None:
        where = keep_traceback(f'Traceback of rank {first}:\n{error["traceback"]}')
        return RankFailure(f'{what} rank {first} stopped on {error["message"]}; the other ranks were stopped{where}')
    return RankFailure(f'{what} rank {first} {_how_it_ended(processes[first].exitcode)}; the other ranks were '
                       f'stopped{kill_hint}')


def _append_to_log(config, text):
    """Append `text` to the run's log.txt; returns ' (traceback in PATH)', or '' when there is no log."""
    run_dir = config.get('run_dir')
    if not run_dir or not os.path.isdir(run_dir):
        return ''
    path = os.path.join(run_dir, 'log.txt')
    try:
        with open(path, 'a', encoding='utf-8') as f:
            f.write(text)
    except OSError:
        return ''
    return f' (traceback in {path})'


def _resume_hint(config):
    run_dir = config.get('run_dir')
    names = os.listdir(run_dir) if run_dir and os.path.isdir(run_dir) else []
    if any(name.startswith('network-snapshot-') and name.endswith('.resume.pt') for name in names):
        return '; --resume=latest continues from the newest complete snapshot'
    return ''


def spawn_ranks(target, args, num_processes, on_failure, ok_codes=(0,)):
    """Run target(rank, args, temp_dir) in `num_processes` spawned processes (target: a module-level function that
    ends in run_guarded) and wait for them; returns their exit codes. Signals to this parent are passed on to them
    (preemption.forward_to). At the first rank that exits with a code not in ok_codes or leaves an error, the others
    are killed and on_failure(processes, failed, temp_dir) is raised (rank_failure's exception)."""
    context = torch.multiprocessing.get_context('spawn')
    with tempfile.TemporaryDirectory() as temp_dir:
        processes = [context.Process(target=target, args=(rank, args, temp_dir), name=f'rank{rank}')
                     for rank in range(num_processes)]
        for process in processes:
            process.start()
        previous = run_preemption.forward_to(processes, scratch=temp_dir)
        try:
            failed = _watch(processes, lambda rank: processes[rank].exitcode not in ok_codes or
                            os.path.exists(_error_file(temp_dir, rank)))
        finally:
            run_preemption.restore_handlers(previous)
        if failed is not None:
            raise on_failure(processes, failed, temp_dir)
        return [process.exitcode for process in processes]


def _spawn(config):
    """One training process per rank; their preemption exit code is ours."""
    preempt_code = config.get('preempt_exit_code', 0)
    codes = spawn_ranks(_rank_main, config, config.num_processes, ok_codes=(0, preempt_code),
                        on_failure=lambda processes, failed, temp_dir: rank_failure(
                            processes, failed, temp_dir, 'training process',
                            keep_traceback=lambda text: _append_to_log(config, text), kill_hint=_resume_hint(config)))
    if preempt_code and preempt_code in codes:
        raise SystemExit(preempt_code)


def launch(config, env=None):
    """Run training for `config` (with config.run_dir set) in this process, in spawned ones, or as a torchrun rank."""
    env = os.environ if env is None else env
    ranks = torchrun_rank(env)
    if ranks is not None:
        rank, local_rank, _world = ranks
        if config.num_processes > 1:
            _init_process_group(config, rank, local_rank, 'env://')
        code = _run(config, rank=rank, local_rank=local_rank)
        _destroy_process_group()  # Only on success: after an error, torchrun's agent ends the other ranks.
    elif config.num_processes == 1:
        code = _run(config, rank=0, local_rank=0)
    else:
        code = 0
        _spawn(config)
    if code:
        raise SystemExit(code)


def start(config, env=None, notes=()):
    """Create the run directory and training_options.json (rank 0 only), then launch; returns the run dir.

    notes: one-line notices of the configuration (resolve_config's), written at the top of the run's log.txt.
    """
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
            run_dirs.write_json(os.path.join(config.run_dir, run_dirs.OPTIONS_FILE), config)
            if notes:
                with open(os.path.join(config.run_dir, 'log.txt'), 'a', encoding='utf-8') as log:
                    log.writelines(f'{note}\n' for note in notes)
            print(f'Training in {config.run_dir}', flush=True)
            launch(config, env)
    except (*USER_ERRORS, UserErrorInRank):
        # A run refused before its first snapshot (a bad --resume, bad data) leaves nothing behind but its
        # options and log, which the one-line error says all of: remove the folder this call made.
        if run_dirs.remove_if_no_snapshot(config.run_dir):
            print(f'Removed {config.run_dir}: the run stopped before its first snapshot', flush=True)
        raise
    return config.run_dir
