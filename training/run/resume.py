"""Exact resume: the .resume.pt companion of a snapshot (write, find, check, load) and restoring a run from it."""

# Beside every network-snapshot-NNNNNN.pkl (official layout, training/run/snapshot.py) a run writes
# network-snapshot-NNNNNN.resume.pt with torch.save: counters, optimizer states, the loss's state
# (path-length mean), the ADA controller's state (p and its partial interval) and the random-number
# generators of every rank. With it `--resume` continues bit-exactly; without it (an official pickle,
# a URL, a transfer-learning name) only weights are copied. What --resume names is resolved above the loop
# (training/cli/resume_source.py).

import hashlib
import os
import re

import numpy as np
import torch

import dnnlib
from torch_utils import misc
from training import export, transfer
from training.run import resume_check
from training.run import snapshot as run_snapshot

RESUME_FORMAT = 1
RESUME_SUFFIX = '.resume.pt'
SNAPSHOT_RE = re.compile(r'^network-snapshot-(\d+)(?:_(\d+)img)?\.pkl$')  # See snapshot.progress_name.
NETWORK_KEYS = ('G_kwargs', 'D_kwargs')  # Must match for optimizer states to fit the networks.
EXACT_KEYS = NETWORK_KEYS + ('batch_size', 'batch_gpu', 'num_processes', 'random_seed', 'training_set_kwargs')
RENAMED_KEYS = {'num_gpus': 'num_processes'}  # Option names in resume states written before a rename.

class ResumeError(ValueError):
    """--resume names something that cannot be found or loaded; the message is one line naming it."""

#----------------------------------------------------------------------------
# Snapshot pairs.

def resume_state_path(snapshot_pkl):
    """The exact-resume companion of a snapshot: network-snapshot-NNNNNN.resume.pt beside it."""
    return re.sub(r'\.pkl$', '', snapshot_pkl) + RESUME_SUFFIX


def prune_snapshots(run_dir, keep, log):
    """--keep-snapshots: delete all but the newest `keep` snapshot pickles (and their resume states) of run_dir.

    Called right after a pair was completely written, so the newest pairs are complete ones; a pickle
    whose resume state is missing or does not match still counts, and is kept only if it is among the newest.
    """
    snapshots = []
    for name in os.listdir(run_dir):
        match = SNAPSHOT_RE.match(name)
        if match:
            snapshots.append((run_snapshot.snapshot_nimg(*match.groups()), os.path.join(run_dir, name)))
    for _nimg, pkl in sorted(snapshots)[:-keep]:
        for path in (pkl, resume_state_path(pkl)):
            if os.path.isfile(path):
                os.remove(path)
        log(f'Removed {os.path.basename(pkl)} and its resume state (--keep-snapshots={keep})')


def file_digest(path):
    """sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def pair_problem(snapshot_pkl, state=None):
    """Why the resume state beside `snapshot_pkl` does not belong to it, or None when it does.

    States written before snapshots were recorded in them cannot be checked and count as belonging; so
    does an unreadable state, which the resume itself then reports.
    """
    if state is None:
        try:
            state = load_resume_state(resume_state_path(snapshot_pkl))
        except ValueError:
            return None
    recorded = state.get('snapshot')
    if recorded is None:
        return None
    if not isinstance(recorded, dict) or not isinstance(recorded.get('sha256'), str) or \
            not isinstance(recorded.get('nimg'), int):
        return 'its resume state\'s snapshot record is damaged (expected name, nimg and sha256)'
    if file_digest(snapshot_pkl) != recorded['sha256']:
        return (f'its resume state was written for another version of the pickle (kimg {recorded["nimg"] / 1e3:g}); '
                f'the run was probably stopped between writing the two')
    return None


#----------------------------------------------------------------------------
# Writing and reading the companion.

def resume_state(progress, optimizers, ada_state, rank_states, config, snapshot_pkl=None):
    """The companion dict; `optimizers` maps phase-module names ('G', 'D') to their optimizers.

    rank_states: per rank, in rank order, dict(rng=..., loss=..., averages=...) (see Run.rank_state).
    snapshot_pkl: the pickle this state belongs to, already written; its image count and digest are
    recorded, so a resume can tell a consistent pair from one a kill left half-replaced.
    """
    snapshot = None if snapshot_pkl is None else dict(name=os.path.basename(snapshot_pkl),
                                                      nimg=int(progress['cur_nimg']), sha256=file_digest(snapshot_pkl))
    return dict(
        snapshot        = snapshot,
        format          = RESUME_FORMAT,
        progress        = dict(progress),
        optimizers      = {name: opt.state_dict() for name, opt in optimizers.items()},
        loss            = rank_states[0]['loss'],  # Rank 0's, for a resume with another number of processes.
        ada             = ada_state,
        rng             = [rank['rng'] for rank in rank_states],
        ranks           = [dict(loss=rank['loss'], averages=rank['averages']) for rank in rank_states],
        options         = {key: plain_options(config.get(key)) for key in EXACT_KEYS},
    )


def save_resume_state(path, state):
    with dnnlib.util.atomic_write(path, 'wb') as f:
        torch.save(state, f)


def _numpy_array_globals():
    """What torch.load needs to rebuild plain numpy arrays (resume states written before RNG keys became tensors)."""
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray  # numpy 2 / numpy 1.
    return [multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def load_resume_state(path):
    """The companion dict written by save_resume_state, or ValueError with one line naming the file.

    Read with torch.load(weights_only=True): tensors, numbers, strings and containers only, so a
    tampered file cannot run code (numpy arrays are allowed too, for states of earlier versions).
    """
    try:
        with torch.serialization.safe_globals(_numpy_array_globals()):
            state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # pylint: disable=broad-except
        raise ValueError(f'{path}: not a readable resume state ({misc.torch_load_reason(exc)})') from None
    if not isinstance(state, dict) or state.get('format') != RESUME_FORMAT:
        raise ValueError(f'{path}: not a resume state of this version (format {RESUME_FORMAT} expected)')
    if not isinstance(state.get('options'), dict):
        raise ValueError(f'{path}: options: missing or not a dict')
    state['options'] = {RENAMED_KEYS.get(key, key): value for key, value in state['options'].items()}
    return state


def resume_mismatch(state, config):
    """Names of the options that differ between the resumed run and this one (empty = bit-exact continuation)."""
    saved = state['options']
    return [key for key in EXACT_KEYS if key != 'training_set_kwargs' and saved.get(key) != plain_options(config.get(key))] + \
           (['training_set_kwargs'] if _dataset_identity(saved.get('training_set_kwargs')) !=
            _dataset_identity(config.get('training_set_kwargs')) else [])


def state_for_rank(state, rank, num_processes):
    """This rank's saved (rng, loss, averages), or None when the run had another number of processes.

    States written before per-rank saving hold only RNG states per rank: loss and averages are then None.
    """
    rngs = state['rng']
    if len(rngs) != num_processes:
        return None
    ranks = state.get('ranks') or [dict(loss=None, averages=None)] * num_processes
    return rngs[rank], ranks[rank]['loss'], ranks[rank]['averages']


def _dataset_identity(kwargs):
    kwargs = dict(kwargs or {})
    return {key: kwargs.get(key) for key in ('use_labels', 'max_size', 'xflip', 'random_seed', 'resolution')}


def plain_options(value):
    """JSON-like copy (EasyDict -> dict, tuple -> list) so saved and current options compare equal."""
    if isinstance(value, dict):
        return {k: plain_options(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_options(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value

#----------------------------------------------------------------------------
# Restoring a run.

def restore(run, config):
    """Load --resume into `run`: exact continuation from our snapshot + companion, or weights only (transfer).

    Returns the resume state when the continuation is exact (its RNG states are restored later, once the
    data and grids are built: see restore_rank_states), else None.
    """
    if not config.resume_pkl:
        return None
    state = _usable_state(run, config)
    run.log(f'Resuming from "{config.resume_pkl}"')
    _load_weights(run, config.resume_pkl, exact=state is not None)
    if state is None:
        return None
    if run.ada is not None and state['ada'] is not None:
        run.ada.load_state_dict(state['ada'])
    for name, opt in run.optimizers.items():
        opt.load_state_dict(state['optimizers'][name])
    run.loss.load_state_dict(state['loss'])
    run.progress.update(state['progress'])  # Saved at the end of a tick; this run starts the next one.
    run.progress.cur_tick += 1
    run.progress.tick_start_nimg = run.progress.cur_nimg
    run.log(f'  exact resume: kimg {run.progress.cur_nimg / 1e3:g}, tick {run.progress.cur_tick}, optimizer states, '
            f'loss state, augment p {run.augment_p():.3f} and ADA accumulator restored')
    return state


def check_total_not_reached(run, resume_pkl):
    """--kimg is the run's total: refuse a resume that has already reached it (it would train one more step)."""
    reached, total = run.progress.cur_nimg, run.config.total_kimg * 1000
    if reached >= total:
        raise ResumeError(f'--resume={resume_pkl}: this run is at {reached / 1e3:g} kimg, and --kimg={total / 1e3:g} '
                          f'is the total to reach, not more to add; pass a larger --kimg to train on')


def _usable_state(run, config):
    """The resume state if there is one and it fits this run's networks (logging what differs), else None."""
    if not config.resume_state:
        return None
    try:
        state = load_resume_state(config.resume_state)
    except ValueError as exc:
        raise ResumeError(f'--resume: {exc}') from None
    problem = pair_problem(config.resume_pkl, state)
    if problem is not None:
        raise ResumeError(f'--resume={config.resume_pkl}: {problem}; pass an older snapshot, or --resume=latest '
                          f'to take the newest consistent one')
    mismatch = resume_mismatch(state, config)
    if set(mismatch) & set(NETWORK_KEYS):
        run.log(f'Resume state not used ({", ".join(mismatch)} differ from the resumed run): loading weights only.')
        return None
    try:  # Before anything is restored from it.
        resume_check.check_resume_state(state, run.optimizers)
    except resume_check.StateError as exc:
        raise ResumeError(f'--resume: {config.resume_state}: {exc}; resume from an earlier snapshot, or pass its '
                          f'.pkl alone after moving the .resume.pt away (weights only)') from None
    if mismatch:
        run.log(f'Continuing with the resume state, but not bit-exactly: {", ".join(mismatch)} differ from the resumed run.')
    return state


def _load_weights(run, resume_pkl, exact):
    """Copy G, D and G_ema from the resumed file: all tensors when exact, else matching ones (transfer).

    A transfer that leaves any tensor freshly initialised needs config.allow_transfer (--transfer), so
    resuming from another architecture by mistake stops with one line instead of training from partial weights.
    """
    try:
        resumed = export.load_network(resume_pkl, device='cpu')
    except (OSError, ValueError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ResumeError(f'--resume={resume_pkl}: {first_line}') from None
    reports = {}
    for name in ('G', 'D', 'G_ema'):
        if resumed.get(name) is None:
            run.log(f'  {name}: not in the resumed file, keeps its fresh initialisation')
        elif exact:
            misc.copy_params_and_buffers(resumed[name], run.nets[name], require_all=True)
        else:
            reports[name] = transfer.transfer_weights(resumed[name], run.nets[name])
    if reports:
        _check_transfer(run, resume_pkl, reports)


def _check_transfer(run, resume_pkl, reports):
    """Log one summary line of a weights-only resume; refuse one that does not fit unless --transfer allows it.

    It fits when every tensor of the file found its place: the configured networks may only add modules
    (e.g. GGDR's decoder on a plain D), which keep their fresh initialisation.
    """
    counts = ', '.join(f'{name} {len(r.copied)}/{len(r.copied) + len(r.initialised)}' for name, r in reports.items())
    misfit = any(report.unused or report.mismatched for report in reports.values())
    nothing = not any(report.copied for report in reports.values())
    if (misfit or nothing) and not run.config.get('allow_transfer', False):
        what = 'no tensor matches' if nothing else f'only some tensors match ({counts})'
        raise ResumeError(f'--resume={resume_pkl}: its networks differ from the configured ones, {what}; '
                          f'pass --transfer to train from the matching tensors, or configure the same architecture')
    fresh = any(report.initialised for report in reports.values())
    run.log(f'  transferred tensors (matching / all): {counts}' + ('; the others keep their fresh initialisation'
                                                                     if fresh else ''))
    for name, report in reports.items():
        run.log(f'  {name}: {report.summary()}')


def restore_rank_states(run, state):
    """Put back this rank's RNG states, loss state and running averages (logged when the process count changed).

    Runs after rank 0's networks were broadcast, which overwrote every rank's own running averages.
    """
    saved = state_for_rank(state, run.rank, run.config.num_processes)
    if saved is None:
        run.log(f'  RNG states not restored: the resumed run had {len(state["rng"])} processes, '
                f'this one {run.config.num_processes}')
        return
    rng, loss_state, averages = saved
    run_snapshot.restore_rng(rng, run.np_random, run.device)
    run.log('  RNG states restored')
    if loss_state is not None:
        run.loss.load_state_dict(loss_state)
    if averages is not None:
        run_snapshot.restore_running_averages(run.nets, averages)
