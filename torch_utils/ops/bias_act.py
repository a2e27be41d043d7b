"""Fused bias + activation + gain + clamp: y = clamp(act(x + b) * gain), with a CUDA kernel and a PyTorch reference."""

import os

import numpy as np
import torch

import dnnlib
from .. import custom_ops
from . import bias_act_cuda

#----------------------------------------------------------------------------
# Each activation: the function, its default alpha and gain, its number in the CUDA kernel, and
# whether its second derivative is nonzero (false for the piecewise-linear ones, which lets the
# CUDA path skip that term in R1's double backward).

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


def _plugin():
    return custom_ops.get_plugin(
        module_name='bias_act_plugin',
        sources=['bias_act.cpp', 'bias_act.cu'],
        headers=['bias_act.h'],
        source_dir=os.path.dirname(__file__),
        extra_cuda_cflags=['--use_fast_math'],
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

    impl='cuda' uses the fused kernel for CUDA tensors when it builds, otherwise the reference.
    Gradients of any order are supported by both paths.
    """
    assert isinstance(x, torch.Tensor)
    if impl not in ('ref', 'cuda'):
        raise ValueError(f'bias_act: impl must be "ref" or "cuda", got {impl!r}')
    if impl == 'cuda' and x.device.type == 'cuda' and x.dtype in _KERNEL_DTYPES and _plugin() is not None:
        return bias_act_cuda.apply(cuda_config(_plugin(), x, b, dim, act, alpha, gain, clamp), x, b)
    return bias_act_ref(x, b=b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)


def cuda_config(plugin, x, b, dim, act, alpha, gain, clamp):
    """The settings bias_act_cuda's Functions run with (`plugin` is the kernel, or a stand-in in tests)."""
    spec, alpha, gain, clamp = _resolve(act, alpha, gain, clamp)
    assert 0 <= dim < x.ndim, f'bias_act: dim {dim} is out of range for a {x.ndim}-D tensor'
    assert b is None or (b.ndim == 1 and b.shape[0] == x.shape[dim]), f'bias of shape {list(b.shape)} does not fit dim {dim} of {list(x.shape)}'
    return bias_act_cuda.BiasActConfig(plugin=plugin, dim=dim, act=act, cuda_idx=spec.cuda_idx,
                                       piecewise_linear=not spec.has_2nd_grad, alpha=alpha, gain=gain, clamp=clamp)


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
