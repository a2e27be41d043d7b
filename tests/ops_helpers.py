"""Shared helpers for the custom-op tests: the kernel case tables, seeded tensors, a loop-by-loop upfirdn2d
written from its definition, and stand-ins for the compiled kernels."""

import numpy as np
import torch

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
# The real kernels' arithmetic on the CPU: the .cu files keep their per-element code in
# __host__ __device__ functions, so a small harness compiled by nvcc (no GPU needed) loops over
# the elements on the host (with both index widths the kernels use). HostKernelPlugin puts it
# behind the bindings' signatures.

_HOST_HARNESS = {
    'host_bias_act.cu': r'''
#include "bias_act.cu"
extern "C" int host_bias_act(const void* x, const void* b, const void* y, const void* dy, void* out, long long numel,
                             long long bias_size, long long bias_step, int dtype, int act, int order,
                             double alpha, double gain, double clamp)
{
    BiasActArgs a;
    a.x = x; a.b = b; a.y = y; a.dy = dy; a.out = out; a.numel = numel; a.bias_size = bias_size; a.bias_step = bias_step;
    a.dtype = dtype; a.act = act; a.order = order; a.alpha = alpha; a.gain = gain; a.clamp = clamp;
    for (int64_t i = 0; i < numel; i++)
    {
        if (dtype == BIAS_ACT_FLOAT32) bias_act_element<float, int64_t>(a, i);
        else if (dtype == BIAS_ACT_FLOAT16) bias_act_element<__half, uint32_t>(a, (uint32_t)i);
        else if (dtype == BIAS_ACT_FLOAT64) bias_act_element<double, int64_t>(a, i);
        else return 1;
    }
    return 0;
}
''',
    'host_upfirdn2d.cu': r'''
#include "upfirdn2d.cu"
extern "C" int host_upfirdn2d(const void* x, const float* w, void* y, int dtype, const int* s,
                              const long long* x_stride, const long long* y_stride)
{
    UpFirDn2dArgs a;
    a.x = x; a.w = w; a.y = y; a.dtype = dtype;
    a.n = s[0]; a.c = s[1]; a.in_h = s[2]; a.in_w = s[3]; a.out_h = s[4]; a.out_w = s[5];
    a.taps_h = s[6]; a.taps_w = s[7]; a.up_x = s[8]; a.up_y = s[9]; a.down_x = s[10]; a.down_y = s[11];
    a.pad_x0 = s[12]; a.pad_y0 = s[13]; a.channels_last = s[14];
    for (int i = 0; i < 4; i++) { a.x_stride[i] = x_stride[i]; a.y_stride[i] = y_stride[i]; }
    const int64_t total = (int64_t)a.n * a.c * a.out_h * a.out_w;
    for (int64_t i = 0; i < total; i++)
    {
        if (dtype == UPFIRDN2D_FLOAT32) upfirdn2d_pixel<float, uint32_t>(a, (uint32_t)i);
        else if (dtype == UPFIRDN2D_FLOAT16) upfirdn2d_pixel<__half, int64_t>(a, i);
        else if (dtype == UPFIRDN2D_FLOAT64) upfirdn2d_pixel<double, uint32_t>(a, (uint32_t)i);
        else return 1;
    }
    return 0;
}
''',
}

_DTYPE_CODES = {torch.float32: 0, torch.float16: 1, torch.float64: 2}


def build_host_kernels(build_dir, nvcc='nvcc'):
    """Compile the kernels' host harness into a shared library in `build_dir`; returns its ctypes handle."""
    import ctypes  # pylint: disable=import-outside-toplevel
    import os  # pylint: disable=import-outside-toplevel
    import subprocess  # pylint: disable=import-outside-toplevel
    ops_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'torch_utils', 'ops')
    sources = []
    for name, text in _HOST_HARNESS.items():
        path = os.path.join(build_dir, name)
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)
        sources.append(path)
    library = os.path.join(build_dir, 'libops_host.so')
    subprocess.run([nvcc, '-shared', '-std=c++17', '-O1', '-Xcompiler', '-fPIC', f'-I{ops_dir}', *sources, '-o', library],
                   check=True, capture_output=True, text=True, timeout=600)
    return ctypes.CDLL(library)


class HostKernelPlugin:
    """The compiled kernels' per-element code, run on the CPU behind the CUDA bindings' signatures.

    Layout handling follows bias_act.cpp / upfirdn2d.cpp: dense inputs keep their strides, dy takes
    x's strides, outputs keep x's memory format.
    """

    def __init__(self, library):
        import ctypes  # pylint: disable=import-outside-toplevel
        self._ctypes = ctypes
        self._lib = library

    def _ptr(self, t):
        return self._ctypes.c_void_p(t.data_ptr() if t is not None and t.numel() > 0 else None)

    def bias_act(self, x, b, y, dy, dim, act, order, alpha, gain, clamp):
        c = self._ctypes
        from_output = y.numel() > 0
        assert not from_output or (order == 1 and b.numel() == 0 and 1 <= act <= 3 and alpha >= 0)
        src = y if from_output else x
        if not src.is_contiguous() and not src.is_contiguous(memory_format=torch.channels_last):
            src = src.contiguous()
        b = b.contiguous()
        if order > 0 and dy.stride() != src.stride():
            dy = torch.empty_like(src).copy_(dy)
        out = torch.empty_like(src)
        has_bias = b.numel() > 0
        status = self._lib.host_bias_act(
            self._ptr(None if from_output else src), self._ptr(b if has_bias else None), self._ptr(src if from_output else None),
            self._ptr(dy if order > 0 else None), self._ptr(out),
            c.c_longlong(src.numel()), c.c_longlong(src.shape[dim] if has_bias else 1), c.c_longlong(src.stride(dim) if has_bias else 1),
            c.c_int(_DTYPE_CODES[src.dtype]), c.c_int(act), c.c_int(order), c.c_double(alpha), c.c_double(gain), c.c_double(clamp))
        assert status == 0
        return out

    def upfirdn2d(self, x, w, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1):
        c = self._ctypes
        w = w.contiguous()
        n, ch, in_h, in_w = x.shape
        out_h = (in_h * up_y + pad_y0 + pad_y1 - w.shape[0]) // down_y + 1
        out_w = (in_w * up_x + pad_x0 + pad_x1 - w.shape[1]) // down_x + 1
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        y = torch.empty([n, ch, out_h, out_w], dtype=x.dtype,
                        memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        sizes = (c.c_int * 15)(n, ch, in_h, in_w, out_h, out_w, w.shape[0], w.shape[1], up_x, up_y, down_x, down_y,
                               pad_x0, pad_y0, int(channels_last))
        status = self._lib.host_upfirdn2d(self._ptr(x), self._ptr(w), self._ptr(y), c.c_int(_DTYPE_CODES[x.dtype]), sizes,
                                          (c.c_longlong * 4)(*x.stride()), (c.c_longlong * 4)(*y.stride()))
        assert status == 0
        return y
