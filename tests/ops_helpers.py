"""Shared helpers for the custom-op tests: the kernel case tables, seeded tensors, a loop-by-loop upfirdn2d
written from its definition, and stand-ins for the compiled kernels."""

import os
import shutil
import subprocess

import numpy as np
import torch
from tests import limits

#----------------------------------------------------------------------------
# The cases every kernel test runs (CPU wiring, host-compiled kernels, GPU): one table, so they cannot drift.

BIAS_ACT_CASES = [  # act, clamp: every activation, and clamped ones for each way the backward reads h'.
    ('elu', None), ('linear', None), ('lrelu', None), ('relu', None), ('selu', None), ('sigmoid', None),
    ('softplus', None), ('swish', None), ('tanh', None),
    ('linear', 1.5), ('relu', 1.5), ('lrelu', 1.5), ('swish', 1.5),
]

UPFIRDN2D_CASES = [
    # taps, separable, up, down, padding, flip_filter, gain
    ([1, 3, 3, 1], False, 2, 1, [2, 1, 2, 1], False, 4),
    ([1, 3, 3, 1], True, 1, 2, [1, 1, 1, 1], False, 1),
    ([1, 2, 5], True, [3, 1], [1, 2], [0, 2, -1, 3], True, 1.5),
    ([[1, 2], [0, -1], [3, 1]], None, [1, 2], [2, 1], [1, 0, 0, 2], False, 1),
    ([[1, 2, 4]], None, [2, 3], [3, 2], [-1, 2, 1, -1], True, 0.5),
    ([[1, 2, 4]], None, [2, 3], [3, 2], [-1, 2, 1, -3], True, 0.5),
]

#----------------------------------------------------------------------------

def randn(*shape, seed=0, dtype=torch.float64, requires_grad=False, device='cpu'):
    """A reproducible normal tensor (float64 by default, for gradcheck)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype=dtype, device=device)
    return x.requires_grad_(requires_grad)


def naive_upfirdn2d(x, f, up=(1, 1), down=(1, 1), padding=(0, 0, 0, 0), flip_filter=False, gain=1):
    """upfirdn2d straight from its definition, with Python loops over output pixels.

    x: [N, C, H, W] tensor; f: 1-D (separable) or 2-D taps; up/down: (x, y); padding: (x0, x1, y0, y1).
    Zero insertion, zero padding (negative crops), true convolution with f (correlation when
    flip_filter), then every down-th pixel.
    """
    x = x.detach().cpu().numpy().astype(np.float64)
    f = np.asarray(f.detach().cpu() if isinstance(f, torch.Tensor) else f, dtype=np.float64)
    if f.ndim == 1:
        f = np.outer(f, f)  # Separable taps act along x, then y.
    upx, upy = up
    downx, downy = down
    px0, px1, py0, py1 = padding
    n, c, h, w = x.shape

    big = np.zeros([n, c, h * upy, w * upx])
    big[:, :, ::upy, ::upx] = x
    padded = np.zeros([n, c, big.shape[2] + max(py0, 0) + max(py1, 0), big.shape[3] + max(px0, 0) + max(px1, 0)])
    padded[:, :, max(py0, 0):max(py0, 0) + big.shape[2], max(px0, 0):max(px0, 0) + big.shape[3]] = big
    padded = padded[:, :, max(-py0, 0):padded.shape[2] - max(-py1, 0), max(-px0, 0):padded.shape[3] - max(-px1, 0)]

    taps = f if flip_filter else f[::-1, ::-1]
    fh, fw = taps.shape
    out_h = (padded.shape[2] - fh) // downy + 1
    out_w = (padded.shape[3] - fw) // downx + 1
    out = np.zeros([n, c, out_h, out_w])
    for oy in range(out_h):
        for ox in range(out_w):
            window = padded[:, :, oy * downy:oy * downy + fh, ox * downx:ox * downx + fw]
            out[:, :, oy, ox] = (window * taps).sum(axis=(2, 3))
    return torch.from_numpy(out * gain)

#----------------------------------------------------------------------------
# Stand-ins for the compiled kernels: same call signature, computed with the references. They let
# the CPU tests check the CUDA path's autograd wiring (adjoints, orders of derivatives).

class ReferenceUpFirDn2dPlugin:
    """Does what upfirdn2d.cu does (a correlation with float32 taps w), and counts its calls."""

    def __init__(self):
        self.calls = 0

    def upfirdn2d(self, x, w, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1):
        from torch_utils.ops import upfirdn2d  # pylint: disable=import-outside-toplevel
        assert w.ndim == 2 and w.dtype == torch.float32
        self.calls += 1
        with torch.no_grad():
            y = upfirdn2d.upfirdn2d_ref(x, w, up=[up_x, up_y], down=[down_x, down_y],
                                        padding=[pad_x0, pad_x1, pad_y0, pad_y1], flip_filter=True)
        return y.clone()  # A fresh tensor, as the kernel's (the reference may return a view).


class ReferenceBiasActPlugin:
    """Does what bias_act.cu does (order 0, 1 or 2 of clamp(act(x + b) * gain), order 1 also from the
    output y), and records the orders asked for and whether each read x or y."""

    def __init__(self):
        self.orders = []
        self.sources = []

    def bias_act(self, x, b, y, dy, dim, act, order, alpha, gain, clamp):
        from torch_utils.ops import bias_act  # pylint: disable=import-outside-toplevel
        name = {spec.cuda_idx: key for key, spec in bias_act.activation_funcs.items()}[act]
        self.orders.append(order)
        self.sources.append('y' if y.numel() > 0 else 'x')
        if y.numel() > 0:
            assert order == 1 and x.numel() == 0 and b.numel() == 0 and name in ('linear', 'relu', 'lrelu')
            positive = y > 0 if gain > 0 else y < 0
            slope = {'linear': torch.ones_like(y), 'relu': positive.to(y.dtype),
                     'lrelu': torch.where(positive, torch.ones_like(y), torch.full_like(y, alpha))}[name]
            inside = (y.abs() < clamp) if clamp >= 0 else torch.ones_like(y, dtype=torch.bool)
            return (dy * gain * slope * inside).detach()
        with torch.enable_grad():
            z = x.detach() if b.numel() == 0 else x.detach() + b.detach().reshape([-1 if i == dim else 1 for i in range(x.ndim)])
            z.requires_grad_(True)
            d = bias_act.bias_act_ref(z, act=name, alpha=alpha, gain=gain, clamp=(clamp if clamp >= 0 else None))
            for _ in range(order):
                d, = torch.autograd.grad(d.sum(), [z], create_graph=True, allow_unused=True)
                d = torch.zeros_like(z) if d is None else d
        d = d.detach()
        return d.clone() if order == 0 else dy.detach() * d  # A fresh tensor, as the kernel's.

#----------------------------------------------------------------------------
# The real bindings and kernels on the CPU: bias_act.cpp, upfirdn2d.cpp and their .cu files, built with
# SQUEEZEGAN_HOST_KERNELS (see torch_utils/ops/ops_device.h) and PyTorch's own flags. The bindings check and lay
# out their arguments exactly as on a GPU; the launch functions loop over the kernels' per-element code
# (__host__ __device__) on the host, with the index types the GPU uses. nvcc compiles the .cu files (no GPU
# needed); torch.utils.cpp_extension compiles the .cpp files, as it does on a GPU machine.

OPS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'torch_utils', 'ops')
HOST_SOURCES = ('ops_device.h', 'bias_act.h', 'bias_act.cu', 'bias_act.cpp', 'upfirdn2d.h', 'upfirdn2d.cu', 'upfirdn2d.cpp')


def cuda_root(nvcc='nvcc'):
    """The CUDA toolkit folder (headers for cuda_runtime_api.h, lib64 for libcudart)."""
    candidates = [os.environ.get('CUDA_HOME'), os.environ.get('CUDA_PATH')]
    real = shutil.which(nvcc)
    if real:
        candidates.append(os.path.dirname(os.path.dirname(os.path.realpath(real))))
    candidates.append('/usr/local/cuda')
    for root in candidates:
        if root and os.path.isfile(os.path.join(root, 'include', 'cuda_runtime_api.h')):
            return root
    raise FileNotFoundError('no CUDA toolkit with include/cuda_runtime_api.h found; set CUDA_HOME')


def host_build_dir():
    """Where build_host_bindings builds (one folder per digest of the sources, under torch's extensions folder)."""
    from torch_utils import custom_ops  # pylint: disable=import-outside-toplevel
    paths = [os.path.join(OPS_DIR, name) for name in HOST_SOURCES]
    return os.path.join(custom_ops._build_root('squeezegan_host_ops'), custom_ops._digest(paths))  # pylint: disable=protected-access


def build_host_bindings(nvcc='nvcc'):
    """The two extension modules (bias_act, upfirdn2d) built for CPU tensors; cached by a digest of their sources."""
    from torch_utils import custom_ops  # pylint: disable=import-outside-toplevel
    build_dir = host_build_dir()
    os.makedirs(build_dir, exist_ok=True)
    root = cuda_root(nvcc)
    flags = custom_ops.extension_flags()
    library = os.path.join(build_dir, 'libsqueezegan_host_kernels.so')
    if not os.path.isfile(library):
        subprocess.run([nvcc, '-shared', *flags['nvcc'], '-O1', '-Xcompiler', '-fPIC', '-DSQUEEZEGAN_HOST_KERNELS',
                        f'-I{OPS_DIR}', os.path.join(OPS_DIR, 'bias_act.cu'), os.path.join(OPS_DIR, 'upfirdn2d.cu'),
                        '-o', library + '.tmp'], check=True, capture_output=True, text=True, timeout=limits.seconds(600))
        os.replace(library + '.tmp', library)
    modules = {}
    for name in ('bias_act', 'upfirdn2d'):
        folder = os.path.join(build_dir, name)
        os.makedirs(folder, exist_ok=True)
        modules[name] = custom_ops.load_locked(  # A build killed halfway must not block the next test run.
            name=f'{name}_host', sources=[os.path.join(OPS_DIR, f'{name}.cpp')], build_directory=folder, verbose=False,
            extra_cflags=['-DSQUEEZEGAN_HOST_KERNELS', f'-I{root}/include', f'-I{OPS_DIR}'],
            extra_ldflags=[f'-L{build_dir}', '-lsqueezegan_host_kernels', f'-Wl,-rpath,{build_dir}',
                           f'-L{root}/lib64', '-lcudart', f'-Wl,-rpath,{root}/lib64'])
    return HostKernels(modules['bias_act'], modules['upfirdn2d'])


class HostKernels:
    """Both host-built bindings behind one object with the plugins' functions (what bias_act_cuda and
    upfirdn2d_cuda call), counting calls."""

    def __init__(self, bias_act_module, upfirdn2d_module):
        self._bias_act = bias_act_module.bias_act
        self._upfirdn2d = upfirdn2d_module.upfirdn2d
        self.calls = 0

    def bias_act(self, *args):
        self.calls += 1
        return self._bias_act(*args)

    def upfirdn2d(self, *args):
        self.calls += 1
        return self._upfirdn2d(*args)
