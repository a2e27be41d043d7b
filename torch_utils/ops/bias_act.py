"""Fused bias + activation + gain + clamp: y = clamp(act(x + b) * gain), with a CUDA kernel and a PyTorch reference."""

import os

import numpy as np
import torch

import dnnlib
from .. import custom_ops
from . import bias_act_cuda

#----------------------------------------------------------------------------
# Each activation: the function, its default alpha and gain, its number in the CUDA kernel, and
# whether its second derivative is nonzero. False marks the piecewise-linear ones: the CUDA path
# reads their slope from the output (keeping y, not x, for backward) and skips the second-order
# term in R1's double backward.

def _act(func, def_alpha, def_gain, cuda_idx, has_2nd_grad):
    return dnnlib.EasyDict(func=func, def_alpha=def_alpha, def_gain=def_gain, cuda_idx=cuda_idx, has_2nd_grad=has_2nd_grad)

activation_funcs = {
    'linear':   _act(lambda x, **_: x,                                                     0,   1,          1, False),
    'relu':     _act(lambda x, **_: torch.nn.functional.relu(x),                           0,   np.sqrt(2), 2, False),
    'lrelu':    _act(lambda x, alpha, **_: torch.nn.functional.leaky_relu(x, alpha),       0.2, np.sqrt(2), 3, False),
    'tanh':     _act(lambda x, **_: torch.tanh(x),                                         0,   1,          4, True),
    'sigmoid':  _act(lambda x, **_: torch.sigmoid(x),                                      0,   1,          5, True),
    'elu':      _act(lambda x, **_: torch.nn.functional.elu(x),                            0,   1,          6, True),
    'selu':     _act(lambda x, **_: torch.nn.functional.selu(x),                           0,   1,          7, True),
    'softplus': _act(lambda x, **_: torch.nn.functional.softplus(x),                       0,   1,          8, True),
    'swish':    _act(lambda x, **_: torch.sigmoid(x) * x,                                  0,   np.sqrt(2), 9, True),
}

#----------------------------------------------------------------------------

_KERNEL_DTYPES = (torch.float16, torch.float32, torch.float64)  # Others (bfloat16) use the reference.
_KERNEL_DEVICE_TYPE = 'cuda'  # Where the kernel runs (the CPU tests point this at a stand-in on 'cpu').


def _plugin():
    return custom_ops.get_plugin(
        module_name='bias_act_plugin',
        sources=['bias_act.cpp', 'bias_act.cu'],
        headers=['bias_act.h', 'ops_device.h'],
        source_dir=os.path.dirname(__file__),
    )


def _resolve(act, alpha, gain, clamp):
    if act not in activation_funcs:
        raise ValueError(f'bias_act: unknown activation "{act}"; accepted: {", ".join(activation_funcs)}')
    spec = activation_funcs[act]
    alpha = float(alpha if alpha is not None else spec.def_alpha)
    gain = float(gain if gain is not None else spec.def_gain)
    clamp = float(clamp if clamp is not None else -1)
    return spec, alpha, gain, clamp


def bias_act(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None, impl='cuda'):
    """Add bias `b` along dimension `dim`, apply `act`, scale by `gain`, clamp to [-clamp, clamp].

    impl='cuda' uses the fused kernel for CUDA tensors when it builds and has passed its self-check
    on that device, otherwise the reference. Gradients of any order are supported by both paths.
    For relu, lrelu and clamped linear the kernel's gradient treats an output exactly at +-clamp as
    clamped, where the reference's passes it through (as in stylegan2-ada-pytorch).
    """
    assert isinstance(x, torch.Tensor)
    if impl not in ('ref', 'cuda'):
        raise ValueError(f'bias_act: impl must be "ref" or "cuda", got {impl!r}')
    plugin = _checked_plugin(x) if impl == 'cuda' else None
    if plugin is not None:
        return bias_act_cuda.apply(cuda_config(plugin, x, b, dim, act, alpha, gain, clamp), x, b)
    return bias_act_ref(x, b=b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)


def _checked_plugin(x):
    """The kernel for x, once it has matched the reference on x's device (see _self_check); else None (the
    reference: SQUEEZEGAN_OPS=ref, a tensor the kernel does not take, or, under 'auto', a kernel that cannot be used)."""
    if custom_ops.ops_mode() == 'ref' or x.device.type != _KERNEL_DEVICE_TYPE or x.dtype not in _KERNEL_DTYPES:
        return None
    plugin = _plugin()
    if plugin is None:
        return None
    return custom_ops.self_checked('bias_act_plugin', plugin, x.device, _self_check)


def cuda_config(plugin, x, b, dim, act, alpha, gain, clamp):
    """The settings bias_act_cuda's Functions run with (`plugin` is the kernel, or a stand-in in tests)."""
    spec, alpha, gain, clamp = _resolve(act, alpha, gain, clamp)
    assert 0 <= dim < x.ndim, f'bias_act: dim {dim} is out of range for a {x.ndim}-D tensor'
    assert b is None or (b.ndim == 1 and b.shape[0] == x.shape[dim]), f'bias of shape {list(b.shape)} does not fit dim {dim} of {list(x.shape)}'
    return bias_act_cuda.BiasActConfig(plugin=plugin, dim=dim, act=act, cuda_idx=spec.cuda_idx,
                                       piecewise_linear=not spec.has_2nd_grad, grad_from=_grad_source(act, spec, alpha, clamp),
                                       alpha=alpha, gain=gain, clamp=clamp)


def _grad_source(act, spec, alpha, clamp):
    """What the CUDA path's backward computes h' from, so that it keeps as little as it can (see bias_act_cuda)."""
    if spec.has_2nd_grad or alpha < 0:  # With alpha < 0, lrelu's output sign no longer tells z's.
        return 'input'
    if act == 'linear' and clamp < 0:
        return 'constant'
    return 'output'


def bias_act_ref(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None):
    """The reference: plain PyTorch ops, differentiable to any order by autograd."""
    spec, alpha, gain, clamp = _resolve(act, alpha, gain, clamp)
    if b is not None:
        assert isinstance(b, torch.Tensor) and b.ndim == 1
        assert 0 <= dim < x.ndim and b.shape[0] == x.shape[dim], f'bias of shape {list(b.shape)} does not fit dim {dim} of {list(x.shape)}'
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = spec.func(x, alpha=alpha)
    if gain != 1:
        x = x * gain
    if clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x

#----------------------------------------------------------------------------
# The check the kernel passes on each device before its first use there (custom_ops.self_checked).

_SELF_CHECK_CASES = [
    # act, clamp, shape, bias dim, channels_last: one per way the backward reads h' (bias_act_cuda).
    ('lrelu',  1.5,  [2, 8, 4, 4], 1, True),    # From the output, clamped.
    ('relu',   None, [5, 6],       1, False),   # From the output.
    ('linear', None, [3, 4, 5],    1, False),   # Constant.
    ('swish',  None, [2, 5, 3],    2, False),   # From the input, with second order.
]
# float16: a few half-ulps (the kernel rounds once, the reference not at all); tight enough to catch a 1% error.
_SELF_CHECK_TOLERANCE = {torch.float32: dict(rtol=1e-4, atol=1e-4), torch.float16: dict(rtol=3e-3, atol=3e-3)}


def _self_check(plugin, device, seed=14):
    """Raise custom_ops.SelfCheckError unless `plugin` matches bias_act_ref on `device`.

    Forward, first and second order, float32 and float16 (against a float32 reference on the same
    rounded inputs), on a few small shapes; milliseconds on a GPU.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.inference_mode(False), torch.enable_grad(), torch.autocast(device.type, enabled=False):
        for act, clamp, shape, dim, channels_last in _SELF_CHECK_CASES:
            x, b, dy, w = [torch.randn(size, generator=generator) * scale
                           for size, scale in ((shape, 2), ([shape[dim]], 0.5), (shape, 1), (shape, 1))]
            x = _away_from_kinks(x, b, dim, act, clamp, generator, scale=2)
            layout = torch.channels_last if channels_last else torch.contiguous_format
            for dtype, tolerance in _SELF_CHECK_TOLERANCE.items():
                inputs = [t.to(device=device, dtype=dtype) for t in (x, b, dy, w)]
                inputs[0] = inputs[0].contiguous(memory_format=layout)
                kernel = lambda x, b: bias_act_cuda.apply(cuda_config(plugin, x, b, dim, act, None, None, clamp), x, b)
                ours = _value_and_derivatives(kernel, *inputs)
                expected = _value_and_derivatives(lambda x, b: bias_act_ref(x, b, dim=dim, act=act, clamp=clamp),
                                                  *[t.float() for t in inputs])
                for (name, a), (_, e) in zip(ours, expected):  # In order: a wrong output fails before backward.
                    custom_ops.check_close(f'{act} {name} in {str(dtype)[6:]} for shape {shape}', a, e, **tolerance)


def _away_from_kinks(x, b, dim, act, clamp, generator, scale, margin=0.05):
    """x, redrawn where x + b lies within `margin` of a kink: z = 0 (relu, lrelu, elu, selu bend there) or an output
    at +-clamp. There float16's rounding in the kernel and float32's in the reference may land on different sides,
    and the derivatives differ by the whole slope (about 1 draw in 80 failed so before). Deterministic per seed."""
    spec = activation_funcs[act]
    for _ in range(100):
        z = x.double() + b.double().reshape([-1 if i == dim else 1 for i in range(x.ndim)])
        near = z.abs() < margin
        if clamp is not None:
            near |= ((spec.func(z, alpha=spec.def_alpha) * spec.def_gain).abs() - clamp).abs() < margin
        if not near.any():
            return x
        x = torch.where(near, torch.randn(x.shape, generator=generator) * scale, x)
    raise AssertionError(f'bias_act self-check: no draw of x away from the kinks of {act} (clamp {clamp})')


def _value_and_derivatives(func, x, b, dy, w):
    """Yields func(x, b), its gradients for the incoming gradient dy, and the gradient of <dx, w> with respect to x."""
    x = x.detach().requires_grad_(True)
    b = b.detach().requires_grad_(True)
    y = func(x, b)
    yield 'output', y
    dx, db = torch.autograd.grad(y, [x, b], dy, create_graph=True)
    yield 'dx', dx
    yield 'db', db
    d2x = torch.autograd.grad(dx, [x], w, allow_unused=True)[0] if dx.requires_grad else None
    yield 'second-order dx', (torch.zeros_like(x) if d2x is None else d2x)

#----------------------------------------------------------------------------
