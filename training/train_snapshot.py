"""Snapshots: network-snapshot-NNNNNN.pkl (official layout) and its exact-resume companion .resume.pt."""

# The pickle is what stylegan2-ada-pytorch writes: a dict with G, D, G_ema, augment_pipe (modules on the
# CPU, eval mode, no gradients) and training_set_kwargs, so every tool that reads official snapshots
# reads ours. Everything else a run needs to continue exactly where it stopped lives in the companion
# file, saved with torch.save: counters, optimizer states, the loss's state (path-length mean), the ADA
# controller's state (p and its partial interval) and the random-number generators of every rank.

import copy
import pickle

import numpy as np
import torch

import dnnlib
from torch_utils import misc
from training import config as training_config

RESUME_FORMAT = 1
NETWORK_KEYS = ('G_kwargs', 'D_kwargs')  # Must match for optimizer states to fit the networks.
EXACT_KEYS = NETWORK_KEYS + ('batch_size', 'batch_gpu', 'num_gpus', 'random_seed', 'training_set_kwargs')

#----------------------------------------------------------------------------
# Random-number generators.

def capture_rng(np_random, device):
    """The state of every generator a training step draws from: torch (CPU and CUDA) and the loop's numpy one."""
    state = dict(torch=torch.get_rng_state(), numpy=np_random.get_state())
    if device.type == 'cuda':
        state['cuda'] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state, np_random, device):
    torch.set_rng_state(state['torch'])
    np_random.set_state(state['numpy'])
    if device.type == 'cuda' and 'cuda' in state:
        torch.cuda.set_rng_state(state['cuda'], device)


def gather_rng(state, num_gpus):
    """Every rank's RNG `state` (from capture_rng), in rank order (a collective call when num_gpus > 1)."""
    if num_gpus == 1:
        return [state]
    states = [None] * num_gpus
    torch.distributed.all_gather_object(states, state)
    return states

#----------------------------------------------------------------------------
# Writing.

def snapshot_networks(networks, training_set_kwargs, num_gpus):
    """The official snapshot dict: CPU copies of the modules (eval, no grad) and the dataset kwargs."""
    data = dict(training_set_kwargs=dict(training_set_kwargs))
    for name in ('G', 'D', 'G_ema', 'augment_pipe'):
        module = networks.get(name)
        if module is not None:
            if num_gpus > 1:
                misc.check_ddp_consistency(module, ignore_regex=r'.*\.[^.]+_(avg|ema)')
            module = copy.deepcopy(module).eval().requires_grad_(False).cpu()
        data[name] = module
    return data


def save_snapshot(path, snapshot_data):
    with dnnlib.util.atomic_write(path, 'wb') as f:
        pickle.dump(snapshot_data, f)


def resume_state(progress, opts, loss, ada_state, rng_states, config):
    """The companion dict; `opts` maps phase-module names ('G', 'D') to their optimizers."""
    return dict(
        format          = RESUME_FORMAT,
        progress        = dict(progress),
        optimizers      = {name: opt.state_dict() for name, opt in opts.items()},
        loss            = loss.state_dict(),
        ada             = ada_state,
        rng             = rng_states,
        options         = {key: _plain(config.get(key)) for key in EXACT_KEYS},
    )


def save_resume_state(path, state):
    with dnnlib.util.atomic_write(path, 'wb') as f:
        torch.save(state, f)

#----------------------------------------------------------------------------
# Reading.

def load_resume_state(path):
    """The companion dict written by save_resume_state, or ValueError with one line naming the file."""
    try:
        state = torch.load(path, map_location='cpu', weights_only=False)
    except Exception as exc:  # pylint: disable=broad-except
        raise ValueError(f'{path}: not a readable resume state ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})') from None
    if not isinstance(state, dict) or state.get('format') != RESUME_FORMAT:
        raise ValueError(f'{path}: not a resume state of this version (format {RESUME_FORMAT} expected)')
    return state


def resume_mismatch(state, config):
    """Names of the options that differ between the resumed run and this one (empty = bit-exact continuation)."""
    saved = state['options']
    return [key for key in EXACT_KEYS if key != 'training_set_kwargs' and saved.get(key) != _plain(config.get(key))] + \
           (['training_set_kwargs'] if _dataset_identity(saved.get('training_set_kwargs')) !=
            _dataset_identity(config.get('training_set_kwargs')) else [])


def rng_for_rank(state, rank, num_gpus):
    """This rank's saved RNG state, or None when the run had another number of processes."""
    states = state['rng']
    return states[rank] if len(states) == num_gpus else None


def _dataset_identity(kwargs):
    kwargs = dict(kwargs or {})
    return {key: kwargs.get(key) for key in ('use_labels', 'max_size', 'xflip', 'random_seed', 'resolution')}


def _plain(value):
    """JSON-like copy (EasyDict -> dict, tuple -> list) so saved and current options compare equal."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def snapshot_name(cur_nimg):
    """network-snapshot-NNNNNN.pkl with NNNNNN = thousands of images shown, as stylegan2-ada-pytorch names them."""
    return f'network-snapshot-{cur_nimg // 1000:06d}.pkl'


resume_path = training_config.resume_state_path
