"""Snapshots: network-snapshot-NNNNNN.pkl in the official layout, and the RNG states a snapshot captures."""

# The pickle is what stylegan2-ada-pytorch writes: a dict with G, D, G_ema, augment_pipe (modules on the
# CPU, eval mode, no gradients) and training_set_kwargs, so every tool that reads official snapshots
# reads ours. What a run needs to continue exactly is in the companion file (training/run/resume.py).

import copy
import pickle

import numpy as np
import torch

import dnnlib
from torch_utils import misc

#----------------------------------------------------------------------------
# Random-number generators.

def capture_rng(np_random, device):
    """The state of every generator a training step draws from: torch (CPU and CUDA) and the loop's numpy one.

    The numpy state's key array is held as a tensor, so a resume state loads with torch.load(weights_only=True).
    """
    name, key, pos, has_gauss, cached_gaussian = np_random.get_state()
    numpy_state = (name, torch.from_numpy(key.astype(np.int64)), int(pos), int(has_gauss), float(cached_gaussian))
    state = dict(torch=torch.get_rng_state(), numpy=numpy_state)
    if device.type == 'cuda':
        state['cuda'] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state, np_random, device):
    name, key, pos, has_gauss, cached_gaussian = state['numpy']
    key = key.numpy() if isinstance(key, torch.Tensor) else key  # Resume states written before: an ndarray.
    torch.set_rng_state(state['torch'])
    np_random.set_state((name, np.asarray(key, dtype=np.uint32), pos, has_gauss, cached_gaussian))
    if device.type == 'cuda' and 'cuda' in state:
        torch.cuda.set_rng_state(state['cuda'], device)


def gather_rng(state, num_processes):
    """Every rank's RNG `state` (from capture_rng), in rank order (a collective call when num_processes > 1)."""
    if num_processes == 1:
        return [state]
    states = [None] * num_processes
    torch.distributed.all_gather_object(states, state)
    return states

#----------------------------------------------------------------------------
# Writing.

def snapshot_networks(networks, training_set_kwargs, num_processes):
    """The official snapshot dict: CPU copies of the modules (eval, no grad) and the dataset kwargs."""
    data = dict(training_set_kwargs=dict(training_set_kwargs))
    for name in ('G', 'D', 'G_ema', 'augment_pipe'):
        module = networks.get(name)
        if module is not None:
            if num_processes > 1:
                misc.check_ddp_consistency(module, ignore_regex=r'.*\.[^.]+_(avg|ema)')
            module = copy.deepcopy(module).eval().requires_grad_(False).cpu()
        data[name] = module
    return data


def save_snapshot(path, snapshot_data):
    with dnnlib.util.atomic_write(path, 'wb') as f:
        pickle.dump(snapshot_data, f)


def snapshot_name(cur_nimg):
    """network-snapshot-NNNNNN.pkl with NNNNNN = thousands of images shown, as stylegan2-ada-pytorch names them."""
    return f'network-snapshot-{cur_nimg // 1000:06d}.pkl'
