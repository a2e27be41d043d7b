"""Snapshots: network-snapshot-NNNNNN.pkl in the official layout, their names, and the RNG states a snapshot captures."""

# The pickle is what stylegan2-ada-pytorch writes: a dict with G, D, G_ema, augment_pipe (modules on the
# CPU, eval mode, no gradients) and training_set_kwargs, so every tool that reads official snapshots
# reads ours. What a run needs to continue exactly is in the companion file (training/run/resume.py).

import copy
import pickle
import re

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


def gather_rank_states(state, num_processes):
    """Every rank's `state` (any picklable value), in rank order (a collective call when num_processes > 1)."""
    if num_processes == 1:
        return [state]
    states = [None] * num_processes
    torch.distributed.all_gather_object(states, state)
    return states

#----------------------------------------------------------------------------
# Running averages: buffers each rank updates from its own share of the batch (w_avg in the mapping
# network), so they differ between ranks. Snapshots hold rank 0's, as stylegan2-ada-pytorch's do; the
# resume state holds every rank's, so an N-process run continues exactly.

RUNNING_AVERAGE_RE = re.compile(r'(^|\.)[^.]+_(avg|ema)$')  # The buffers check_ddp_consistency skips too.


def running_averages(networks):
    """{'G.mapping.w_avg': tensor, ...}: CPU copies of the running-average buffers of G and G_ema."""
    averages = {}
    for name in ('G', 'G_ema'):
        for buffer_name, buffer in networks[name].named_buffers():
            if RUNNING_AVERAGE_RE.search(buffer_name):
                averages[f'{name}.{buffer_name}'] = buffer.detach().cpu().clone()
    return averages


def restore_running_averages(networks, averages):
    """Copy what running_averages() returned back into the networks' buffers."""
    for name in ('G', 'G_ema'):
        buffers = dict(networks[name].named_buffers())
        for buffer_name, buffer in buffers.items():
            saved = averages.get(f'{name}.{buffer_name}')
            if saved is not None:
                buffer.copy_(saved)

#----------------------------------------------------------------------------
# Writing.

def snapshot_networks(networks, training_set_kwargs, num_processes, class_names=None):
    """The official snapshot dict: CPU copies of the modules (eval, no grad) and the dataset kwargs; plus, when the
    dataset names its classes, class_names (a key official tools ignore)."""
    data = dict(training_set_kwargs=dict(training_set_kwargs))
    if class_names is not None:
        data['class_names'] = list(class_names)
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


def progress_name(prefix, cur_nimg, suffix, taken=lambda name: False):
    """<prefix>NNNNNN<suffix> with NNNNNN = thousands of images shown (rounded down), as stylegan2-ada-pytorch names
    snapshots; when a file of the run already has that name (ticks under 1 kimg), the remaining images are added,
    <prefix>NNNNNN_RRRimg<suffix>, so no file a run wrote is ever overwritten. Names sort in training order."""
    name = f'{prefix}{cur_nimg // 1000:06d}{suffix}'
    if taken(name):
        name = f'{prefix}{cur_nimg // 1000:06d}_{cur_nimg % 1000:03d}img{suffix}'
    return name


def snapshot_name(cur_nimg, taken=lambda name: False):
    """network-snapshot-NNNNNN.pkl, or network-snapshot-NNNNNN_RRRimg.pkl when the first is taken (progress_name)."""
    return progress_name('network-snapshot-', cur_nimg, '.pkl', taken)


def snapshot_nimg(kimg_digits, img_digits=None):
    """Images shown, from the two numbers of a snapshot name (a name without _RRRimg counts as whole kimg)."""
    return int(kimg_digits) * 1000 + (int(img_digits) if img_digits else 0)

#----------------------------------------------------------------------------
# Room for a snapshot, checked before the first step.

def estimated_snapshot_bytes(G_kwargs, D_kwargs, resolution, img_channels=3, c_dim=0):
    """Bytes one snapshot takes: float32 G, D and G_ema in the pickle, plus Adam's two moments of G and D in
    the resume state; 10% on top for buffers, the augment pipe and pickling."""
    common = dict(c_dim=c_dim, img_resolution=resolution, img_channels=img_channels)
    with torch.no_grad():
        G = dnnlib.util.construct_class_by_name(**G_kwargs, **common)
        D = dnnlib.util.construct_class_by_name(**D_kwargs, **common)
    g_params = sum(p.numel() for p in G.parameters())
    d_params = sum(p.numel() for p in D.parameters())
    pickle_bytes = 4 * (2 * g_params + d_params)
    optimizer_bytes = 2 * 4 * (g_params + d_params)
    return int(1.1 * (pickle_bytes + optimizer_bytes))


def output_room_problem(outdir, needed_bytes):
    """Why `outdir` has no room for a snapshot of `needed_bytes`, or None (also when the free space is unknown)."""
    free = dnnlib.util.free_bytes(outdir)
    if free is None or free >= needed_bytes:
        return None
    return (f'{dnnlib.util.format_bytes(free)} free on its disk, but one snapshot (pickle and resume state) needs '
            f'about {dnnlib.util.format_bytes(needed_bytes)}')
