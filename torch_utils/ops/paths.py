"""Which implementation each custom op takes on a device, as the training log, --dry-run and the benchmarks state it."""

import torch

from torch_utils import custom_ops
from torch_utils.ops import bias_act, upfirdn2d

# Op name -> (module with _checked_plugin, the name its kernel is built under).
OPS = {
    'bias_act':  (bias_act, 'bias_act_plugin'),
    'upfirdn2d': (upfirdn2d, 'upfirdn2d_plugin'),
}
KERNEL = 'CUDA kernel'


def check_mode_fits(device_type):
    """One-line KernelUnavailableError when SQUEEZEGAN_OPS=cuda asks for kernels on a run without CUDA (and
    OpsModeError for a value other than auto, cuda, ref); at start, before anything is built."""
    if custom_ops.ops_mode() == 'cuda' and device_type != 'cuda':
        raise custom_ops.KernelUnavailableError(f'{custom_ops.OPS_ENV}=cuda: this run has no CUDA device (it trains on '
                                                f'{device_type}); unset {custom_ops.OPS_ENV} or set it to auto or ref')


def op_paths(device):
    """{op name: 'CUDA kernel' or 'reference (why)'} for float32 tensors on `device`.

    Builds and self-checks the kernels there now, so that what it says is what the first step will run; under
    SQUEEZEGAN_OPS=cuda a kernel that cannot be used raises KernelUnavailableError naming the op and why.
    """
    device = torch.device(device)
    check_mode_fits(device.type)
    mode = custom_ops.ops_mode()
    paths = {}
    for name, (module, plugin_name) in OPS.items():
        if mode == 'ref':
            paths[name] = f'reference ({custom_ops.OPS_ENV}=ref)'
        elif device.type != module._KERNEL_DEVICE_TYPE:  # pylint: disable=protected-access
            paths[name] = f'reference (the kernel runs on CUDA tensors only; this is {device.type})'
        elif module._checked_plugin(torch.zeros([1, 1, 1, 1], device=device)) is not None:  # pylint: disable=protected-access
            paths[name] = KERNEL
        else:
            paths[name] = f'reference (the kernel {custom_ops.problem(plugin_name, device)})'
    return paths


def describe(device):
    """One line: 'Ops on DEVICE (SQUEEZEGAN_OPS=mode): bias_act: ...; upfirdn2d: ...'."""
    paths = op_paths(device)
    listing = '; '.join(f'{name}: {path}' for name, path in paths.items())
    return f'Ops on {device} ({custom_ops.OPS_ENV}={custom_ops.ops_mode()}): {listing}'
