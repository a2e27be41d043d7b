"""Reusable PyTorch helpers: cached constants, shape checks, parameter copying, a DDP consistency check, an infinite sampler, torch.load errors."""

import contextlib
import re
import warnings

import numpy as np
import torch


#----------------------------------------------------------------------------
# Constants built once per (value, shape, dtype, device, memory format) instead of on every call.

_constant_cache = dict()

def constant(value, shape=None, dtype=None, device=None, memory_format=None):
    """A tensor holding `value`, cached so repeated calls (e.g. inside forward) do not re-upload it."""
    value = np.asarray(value)
    if shape is not None:
        shape = tuple(shape)
    if dtype is None:
        dtype = torch.get_default_dtype()
    if device is None:
        device = torch.device('cpu')
    if memory_format is None:
        memory_format = torch.contiguous_format
    key = (value.shape, value.dtype, value.tobytes(), shape, dtype, device, memory_format)
    tensor = _constant_cache.get(key, None)
    if tensor is None:
        tensor = torch.as_tensor(value.copy(), dtype=dtype, device=device)
        if shape is not None:
            tensor, _ = torch.broadcast_tensors(tensor, torch.empty(shape))
        tensor = tensor.contiguous(memory_format=memory_format)
        _constant_cache[key] = tensor
    return tensor

#----------------------------------------------------------------------------
# Shape checks at module boundaries.

@contextlib.contextmanager
def suppress_tracer_warnings():
    """Silence the TracerWarnings that shape checks raise while a module is traced with torch.jit."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', category=torch.jit.TracerWarning)
        yield


def assert_shape(tensor, ref_shape):
    """Raise AssertionError unless `tensor` has `ref_shape`; None in `ref_shape` matches any size."""
    if tensor.ndim != len(ref_shape):
        raise AssertionError(f'Wrong number of dimensions: got {tensor.ndim}, expected {len(ref_shape)} '
                             f'(shape {list(tensor.shape)} vs {list(ref_shape)})')
    for idx, (size, ref_size) in enumerate(zip(tensor.shape, ref_shape)):
        if ref_size is None:
            continue
        if isinstance(ref_size, torch.Tensor):
            with suppress_tracer_warnings():
                torch._assert(torch.equal(torch.as_tensor(size), ref_size), f'Wrong size for dimension {idx}')
        elif isinstance(size, torch.Tensor):
            with suppress_tracer_warnings():
                torch._assert(torch.equal(size, torch.as_tensor(ref_size)), f'Wrong size for dimension {idx}: expected {ref_size}')
        elif size != ref_size:
            raise AssertionError(f'Wrong size for dimension {idx}: got {size}, expected {ref_size} '
                                 f'(shape {list(tensor.shape)} vs {list(ref_shape)})')


def profiled_function(fn):
    """Decorator that names the function in the autograd profiler's trace."""
    def decorator(*args, **kwargs):
        with torch.autograd.profiler.record_function(fn.__name__):
            return fn(*args, **kwargs)
    decorator.__name__ = fn.__name__
    decorator.__qualname__ = getattr(fn, '__qualname__', fn.__name__)
    decorator.__doc__ = fn.__doc__
    return decorator

#----------------------------------------------------------------------------
# A sampler that never ends, so the training loop can draw batches by count rather than by epoch.

class InfiniteSampler(torch.utils.data.Sampler):
    """Yields dataset indices forever; each rank takes every num_replicas-th index of one shared order.

    With shuffle, the order is a seeded permutation that is gradually re-mixed by swapping items
    within a window, so every rank sees the same sequence for the same seed.
    """

    def __init__(self,
        dataset,                # Anything with __len__.
        rank         = 0,       # This process's index among the replicas.
        num_replicas = 1,       # Number of processes sharing the dataset.
        shuffle      = True,    # Shuffle the order (seeded) or walk it in order.
        seed         = 0,       # Seed of the shuffle.
        window_size  = 0.5,     # Fraction of the dataset within which items are re-swapped.
        start_index  = 0,       # Position in the shared sequence to start from (exact resume).
    ):
        if len(dataset) <= 0:
            raise ValueError('InfiniteSampler: the dataset is empty')
        if num_replicas <= 0 or not 0 <= rank < num_replicas:
            raise ValueError(f'InfiniteSampler: rank {rank} is not in [0, {num_replicas})')
        if not 0 <= window_size <= 1:
            raise ValueError(f'InfiniteSampler: window_size must be in [0, 1], got {window_size}')
        super().__init__()
        self.dataset = dataset
        self.rank = rank
        self.num_replicas = num_replicas
        self.shuffle = shuffle
        self.seed = seed
        self.window_size = window_size
        self.start_index = start_index

    def __iter__(self):
        order = np.arange(len(self.dataset))
        window = 0
        if self.shuffle:
            rnd = np.random.RandomState(self.seed)
            rnd.shuffle(order)
            window = int(np.rint(order.size * self.window_size))
        order = order.tolist()  # Python lists swap far faster than numpy scalars; resuming replays every swap.
        size = len(order)
        offsets = iter(())
        idx = 0
        while True:
            i = idx % size
            if idx >= self.start_index and idx % self.num_replicas == self.rank:
                yield order[i]
            if window >= 2:
                offset = next(offsets, None)
                if offset is None:  # Drawn in blocks: the same numbers as one randint call per step.
                    offsets = iter(rnd.randint(window, size=4096).tolist())
                    offset = next(offsets)
                j = (i - offset) % size
                order[i], order[j] = order[j], order[i]
            idx += 1

#----------------------------------------------------------------------------
# Parameters and buffers.

def params_and_buffers(module):
    """All parameters and buffers of `module`, as a list."""
    assert isinstance(module, torch.nn.Module)
    return list(module.parameters()) + list(module.buffers())


def named_params_and_buffers(module):
    """All (name, tensor) pairs of parameters and buffers of `module`, as a list."""
    assert isinstance(module, torch.nn.Module)
    return list(module.named_parameters()) + list(module.named_buffers())


@torch.no_grad()
def copy_params_and_buffers(src_module, dst_module, require_all=False):
    """Copy every parameter and buffer of `dst_module` that `src_module` has under the same name."""
    assert isinstance(src_module, torch.nn.Module)
    assert isinstance(dst_module, torch.nn.Module)
    src_tensors = dict(named_params_and_buffers(src_module))
    for name, tensor in named_params_and_buffers(dst_module):
        if name not in src_tensors:
            if require_all:
                raise KeyError(f'copy_params_and_buffers: source has no tensor named "{name}"')
            continue
        src = src_tensors[name]
        if src.shape != tensor.shape:
            raise ValueError(f'copy_params_and_buffers: "{name}" has shape {list(src.shape)} in the source '
                             f'but {list(tensor.shape)} in the destination')
        tensor.copy_(src.detach()).requires_grad_(tensor.requires_grad)

#----------------------------------------------------------------------------
# Distributed helpers.

def check_ddp_consistency(module, ignore_regex=None):
    """Assert that every parameter and buffer is identical on all ranks (catches un-synchronised state)."""
    assert isinstance(module, torch.nn.Module)
    for name, tensor in named_params_and_buffers(module):
        fullname = type(module).__name__ + '.' + name
        if ignore_regex is not None and re.fullmatch(ignore_regex, fullname):
            continue
        tensor = tensor.detach()
        if tensor.is_floating_point():
            tensor = torch.nan_to_num(tensor)
        other = tensor.clone()
        torch.distributed.broadcast(tensor=other, src=0)
        if not (tensor == other).all():
            raise AssertionError(f'{fullname} differs between rank 0 and rank {torch.distributed.get_rank()}')

#----------------------------------------------------------------------------
# TF32: cuDNN convolves in it by default on Ampere and newer GPUs (a 10-bit mantissa, ~1e-3 relative).

def set_tf32(allowed):
    """Allow or forbid TF32 in cuDNN convolutions and cuBLAS matmuls; returns the previous (cudnn, matmul) pair.

    `allowed`: one value for both, or such a pair (what an earlier call returned, to put it back). Training
    (`--allow-tf32`, default off), calc_metrics.py, the benchmarks and the GPU tests set it explicitly, so what they
    compute or time does not depend on PyTorch's per-library defaults.
    """
    cudnn, matmul = allowed if isinstance(allowed, tuple) else (allowed, allowed)
    previous = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = bool(cudnn), bool(matmul)
    return previous

#----------------------------------------------------------------------------
# torch.load errors in one line.

def torch_load_reason(error):
    """The informative line of a torch.load error: for a weights-only refusal, the global it refused.

    torch opens such errors with paragraphs of generic advice; a user needs the name it refused.
    """
    text = str(error)
    if text.startswith('Weights only load failed'):
        refused = re.search(r'GLOBAL ([\w.]+)', text)
        if refused:
            return f'refusing to load {refused.group(1)}: the file may hold only tensors and plain values'
        return 'damaged, or not a file of tensors and plain values'
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__

