"""Upsample, FIR-filter, downsample (upfirdn2d) on NCHW images, with a CUDA kernel and a PyTorch reference.

One op covers the resampling StyleGAN2 needs: insert up-1 zeros between pixels, pad, convolve with a
separable (1-D) or general (2-D) FIR filter, keep every down-th pixel.
"""

import os

import numpy as np
import torch

from .. import custom_ops
from . import upfirdn2d_cuda

#----------------------------------------------------------------------------

_KERNEL_DTYPES = (torch.float16, torch.float32, torch.float64)  # Others (bfloat16) use the reference.
_KERNEL_DEVICE_TYPE = 'cuda'  # Where the kernel runs (the CPU tests point this at a stand-in on 'cpu').


def _plugin():
    return custom_ops.get_plugin(
        module_name='upfirdn2d_plugin',
        sources=['upfirdn2d.cpp', 'upfirdn2d.cu'],
        headers=['upfirdn2d.h', 'ops_device.h'],
        source_dir=os.path.dirname(__file__),
    )


def _pair(value, name):
    """An int or a pair as (x, y)."""
    if isinstance(value, int):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return value[0], value[1]
    raise ValueError(f'upfirdn2d: {name} must be an int or a pair [x, y], got {value!r}')


def _parse_padding(padding):
    """An int, [x, y] or [x0, x1, y0, y1] as (x0, x1, y0, y1)."""
    if torch.jit.is_tracing() and isinstance(padding, (list, tuple)):  # Sizes read off tensors are tensors there.
        padding = [int(p) for p in padding]
    if isinstance(padding, int):
        return padding, padding, padding, padding
    if isinstance(padding, (list, tuple)) and all(isinstance(p, int) for p in padding):
        if len(padding) == 2:
            return padding[0], padding[0], padding[1], padding[1]
        if len(padding) == 4:
            return tuple(padding)
    raise ValueError(f'upfirdn2d: padding must be an int, [x, y] or [x0, x1, y0, y1], got {padding!r}')


def _filter_size(f):
    """(width, height) of a filter tensor (None counts as 1x1)."""
    if f is None:
        return 1, 1
    assert isinstance(f, torch.Tensor) and f.ndim in (1, 2)
    return f.shape[-1], f.shape[0]

_get_filter_size = _filter_size  # The name stylegan2-ada-pytorch's network code imports.

#----------------------------------------------------------------------------

def setup_filter(f, device=torch.device('cpu'), normalize=True, flip_filter=False, gain=1, separable=None):
    """A filter tensor ready for upfirdn2d from a list, array or tensor of taps.

    1-D taps stay separable (applied along x then y) when `separable` is true, or by default when
    there are at least 8 taps; otherwise they become their 2-D outer product. `normalize` makes the
    taps sum to 1, `gain` scales the overall response (split over the two axes when separable).
    """
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    assert f.ndim in (0, 1, 2) and f.numel() > 0
    if f.ndim == 0:
        f = f[np.newaxis]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    assert f.ndim == (1 if separable else 2)
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)

#----------------------------------------------------------------------------

def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl='cuda'):
    """Upsample by `up`, pad, convolve with FIR filter `f`, downsample by `down` ([x, y] pairs allowed).

    `padding` ([x0, x1, y0, y1], negative values crop) applies to the upsampled image. `f` is a 1-D
    (separable) or 2-D filter from setup_filter, or None for identity. Without `flip_filter` the
    filter is flipped, i.e. this is a true convolution. Gradients of any order are supported.
    impl='cuda' uses the kernel for 4-D CUDA tensors when it builds and has passed its self-check on
    that device, otherwise the reference.
    """
    assert isinstance(x, torch.Tensor)
    if impl not in ('ref', 'cuda'):
        raise ValueError(f'upfirdn2d: impl must be "ref" or "cuda", got {impl!r}')
    plugin = _checked_plugin(x) if impl == 'cuda' else None
    if plugin is not None:
        return upfirdn2d_cuda.apply(cuda_config(plugin, up, down, padding, flip_filter, gain), x, f)
    return upfirdn2d_ref(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)


def _checked_plugin(x):
    """The kernel for x, once it has matched the reference on x's device (see _self_check); else None (the
    reference: SQUEEZEGAN_OPS=ref, a tensor the kernel does not take, or, under 'auto', a kernel that cannot be used)."""
    if custom_ops.ops_mode() == 'ref' or x.device.type != _KERNEL_DEVICE_TYPE or x.ndim != 4 or x.dtype not in _KERNEL_DTYPES:
        return None
    plugin = _plugin()
    if plugin is None:
        return None
    return custom_ops.self_checked('upfirdn2d_plugin', plugin, x.device, _self_check)


def cuda_config(plugin, up=1, down=1, padding=0, flip_filter=False, gain=1):
    """The settings upfirdn2d_cuda's Function runs with (`plugin` is the kernel, or a stand-in in tests)."""
    upx, upy = _pair(up, 'up')
    downx, downy = _pair(down, 'down')
    assert upx >= 1 and upy >= 1 and downx >= 1 and downy >= 1
    return upfirdn2d_cuda.UpFirDn2dConfig(plugin=plugin, up=(upx, upy), down=(downx, downy), padding=_parse_padding(padding),
                                          flip_filter=bool(flip_filter), gain=float(gain))


def upfirdn2d_ref(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    """The reference: strided transposed conv (upsampling) or pad/crop + depthwise conv2d, then strided slicing."""
    assert isinstance(x, torch.Tensor) and x.ndim == 4
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    assert isinstance(f, torch.Tensor) and f.ndim in (1, 2) and f.dtype == torch.float32
    num_channels = int(x.shape[1])  # Sizes are plain ints also while tracing (ONNX export): filter shapes are known.
    upx, upy = _pair(up, 'up')
    downx, downy = _pair(down, 'down')
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    assert upx >= 1 and upy >= 1 and downx >= 1 and downy >= 1

    if upx > 1 or upy > 1:
        return _upsample_by_transposed_conv(x, f, upx, upy, padx0, padx1, pady0, pady1, flip_filter, gain)[:, :, ::downy, ::downx]

    # Pad with zeros (positive) and crop (negative).
    x = torch.nn.functional.pad(x, [max(padx0, 0), max(padx1, 0), max(pady0, 0), max(pady1, 0)])
    x = x[:, :, max(-pady0, 0) : x.shape[2] - max(-pady1, 0), max(-padx0, 0) : x.shape[3] - max(-padx1, 0)]

    # Depthwise convolution; conv2d correlates, so the filter is flipped for a true convolution.
    f = f * (gain ** (f.ndim / 2))
    f = f.to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = torch.nn.functional.conv2d(x, f[None, None].repeat([num_channels, 1, 1, 1]), groups=num_channels)
    else:
        f = f[None, None].repeat([num_channels, 1, 1])
        x = torch.nn.functional.conv2d(x, f.unsqueeze(2), groups=num_channels)
        x = torch.nn.functional.conv2d(x, f.unsqueeze(3), groups=num_channels)

    # Decimation.
    return x[:, :, ::downy, ::downx]


def _upsample_by_transposed_conv(x, f, upx, upy, padx0, padx1, pady0, pady1, flip_filter, gain):
    """Upsample + pad + filter as one strided transposed conv: no multiplications by inserted zeros.

    conv_transpose2d with stride `up` is the full true convolution of the zero-inserted image with f,
    of size (H-1)*up + K; the upfirdn2d output is its window starting at K-1-pad0, zero-extended where
    the padding reaches past it. That is up*up times fewer multiply-adds than filtering the zeros.
    """
    num_channels, in_height, in_width = (int(size) for size in x.shape[1:])  # Plain ints also while tracing.
    f = f * (gain ** (f.ndim / 2))
    f = f.to(x.dtype)
    if flip_filter:  # conv_transpose2d already convolves (flips); flip_filter asks for correlation.
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        kh, kw = f.shape
        y = torch.nn.functional.conv_transpose2d(x, f[None, None].repeat([num_channels, 1, 1, 1]), stride=(upy, upx), groups=num_channels)
    else:
        kh = kw = f.shape[0]
        f = f[None, None].repeat([num_channels, 1, 1])
        y = torch.nn.functional.conv_transpose2d(x, f.unsqueeze(2), stride=(1, upx), groups=num_channels)
        y = torch.nn.functional.conv_transpose2d(y, f.unsqueeze(3), stride=(upy, 1), groups=num_channels)
    out_height = in_height * upy + pady0 + pady1 - kh + 1
    out_width = in_width * upx + padx0 + padx1 - kw + 1
    assert out_height >= 1 and out_width >= 1, 'upfirdn2d: padding crops the whole image'
    top, left = kh - 1 - pady0, kw - 1 - padx0
    extend = [max(-left, 0), max(left + out_width - y.shape[3], 0), max(-top, 0), max(top + out_height - y.shape[2], 0)]
    if any(extend):
        y = torch.nn.functional.pad(y, extend)
        top, left = top + extend[2], left + extend[0]
    return y[:, :, top : top + out_height, left : left + out_width]

#----------------------------------------------------------------------------

def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl='cuda'):
    """Filter with `f`, padding so that the output has the input's size (plus `padding`)."""
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    p = [padx0 + fw // 2, padx1 + (fw - 1) // 2, pady0 + fh // 2, pady1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl='cuda'):
    """Upsample by `up` with interpolation filter `f`; output size is input size times `up` (plus `padding`)."""
    upx, upy = _pair(up, 'up')
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    p = [padx0 + (fw + upx - 1) // 2, padx1 + (fw - upx) // 2, pady0 + (fh + upy - 1) // 2, pady1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl)


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl='cuda'):
    """Anti-alias with `f` and downsample by `down`; output size is input size over `down` (plus `padding`)."""
    downx, downy = _pair(down, 'down')
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    p = [padx0 + (fw - downx + 1) // 2, padx1 + (fw - downx) // 2, pady0 + (fh - downy + 1) // 2, pady1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)

#----------------------------------------------------------------------------
# The check the kernel passes on each device before its first use there (custom_ops.self_checked).

_SELF_CHECK_CASES = [
    # taps, separable, up, down, padding, flip_filter, gain, input shape, channels_last
    ([1, 3, 3, 1], False, 2, 1, [2, 1, 2, 1], False, 4, [2, 3, 6, 5], True),                    # upsample2d
    ([1, 3, 3, 1, 1, 3, 3, 1], True, 1, 2, [3, 3, 3, 3], False, 1, [1, 4, 8, 7], False),        # downsample2d
    ([[1, 2, 0], [-1, 3, 2]], None, [1, 2], [2, 1], [1, 0, -1, 2], True, 0.5, [2, 2, 5, 6], False),
]
# float16: a few half-ulps (the kernel rounds once, the reference not at all); tight enough to catch a 1% error.
_SELF_CHECK_TOLERANCE = {torch.float32: dict(rtol=1e-4, atol=1e-4), torch.float16: dict(rtol=3e-3, atol=3e-3)}


def _self_check(plugin, device, seed=14):
    """Raise custom_ops.SelfCheckError unless `plugin` matches upfirdn2d_ref on `device`.

    Output and input gradient (which runs the adjoint), float32 and float16 (against a float32
    reference on the same rounded inputs), on a few small shapes; milliseconds on a GPU.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.inference_mode(False), torch.enable_grad(), torch.autocast(device.type, enabled=False):
        for taps, separable, up, down, padding, flip_filter, gain, shape, channels_last in _SELF_CHECK_CASES:
            f = setup_filter(taps, device=device, separable=separable)
            kwargs = dict(up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
            x = torch.randn(shape, generator=generator)
            dy = torch.randn(upfirdn2d_ref(x, f.cpu(), **kwargs).shape, generator=generator)
            layout = torch.channels_last if channels_last else torch.contiguous_format
            for dtype, tolerance in _SELF_CHECK_TOLERANCE.items():
                inputs = [x.to(device=device, dtype=dtype).contiguous(memory_format=layout), dy.to(device=device, dtype=dtype)]
                kernel = lambda x: upfirdn2d_cuda.apply(cuda_config(plugin, **kwargs), x, f)
                ours = _value_and_gradient(kernel, *inputs)
                expected = _value_and_gradient(lambda x: upfirdn2d_ref(x, f, **kwargs), *[t.float() for t in inputs])
                for (name, a), (_, e) in zip(ours, expected):  # In order: a wrong output fails before backward.
                    custom_ops.check_close(f'{name} in {str(dtype)[6:]} for taps {taps}, up {up}, down {down}', a, e, **tolerance)


def _value_and_gradient(func, x, dy):
    """Yields func(x) and its gradient for the incoming gradient dy."""
    x = x.detach().requires_grad_(True)
    y = func(x)
    yield 'output', y
    yield 'dx', torch.autograd.grad(y, [x], dy)[0]

#----------------------------------------------------------------------------
