"""Autograd wiring of the fused bias_act kernel, differentiable to any order.

The kernel computes, elementwise with z = x + b and h(z) = clamp(act(z) * gain):
order 0: h(z); order 1: dy * h'(z); order 2: dy * h''(z). Each order is an autograd Function whose
backward is written with the next order (and, past the second, with autograd on the reference), so
the CUDA path gives exact gradients of any order, not just first and second.
"""

import collections

import torch

#----------------------------------------------------------------------------

# What the Functions need besides tensors. `plugin` is any object with the kernel's signature:
# plugin.bias_act(x, b, dy, dim, act, order, alpha, gain, clamp) -> tensor (tests pass a stand-in).
BiasActConfig = collections.namedtuple('BiasActConfig', [
    'plugin',           # The built extension (or a stand-in with the same signature).
    'dim',              # Dimension of x that the bias runs along.
    'act',              # Activation name (a key of bias_act.activation_funcs).
    'cuda_idx',         # The kernel's number for the activation.
    'piecewise_linear', # True when h'' is zero almost everywhere (linear, relu, lrelu).
    'alpha',            # Activation parameter.
    'gain',             # Output scale.
    'clamp',            # Clamp magnitude, negative for none.
])


def apply(config, x, b):
    """clamp(act(x + b) * gain) through the kernel, with autograd support of any order."""
    if b is not None and b.dtype != x.dtype:
        b = b.to(x.dtype)
    return _BiasAct.apply(x, b, config)

#----------------------------------------------------------------------------

def _kernel(config, x, b, dy, order):
    empty = x.new_empty([0])
    return config.plugin.bias_act(x, empty if b is None else b, empty if dy is None else dy, config.dim,
                                  config.cuda_idx, order, config.alpha, config.gain, config.clamp)


def _bias_grad(config, dx, b, needed):
    """Gradient of the bias: dx summed over every dimension but the bias one."""
    if b is None or not needed or dx is None:
        return None
    return dx.sum([i for i in range(dx.ndim) if i != config.dim])


class _BiasAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, config):  # pylint: disable=arguments-differ
        ctx.config = config
        ctx.save_for_backward(x, b)
        return _kernel(config, x, b, None, order=0)

    @staticmethod
    def backward(ctx, dy):  # pylint: disable=arguments-differ
        x, b = ctx.saved_tensors
        dx = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            dx = _BiasActDerivative.apply(dy, x, b, 1, ctx.config)
        return (dx if ctx.needs_input_grad[0] else None), _bias_grad(ctx.config, dx, b, ctx.needs_input_grad[1]), None


class _BiasActDerivative(torch.autograd.Function):
    """t * h^(order)(x + b) for order 1 or 2; linear in t."""

    @staticmethod
    def forward(ctx, t, x, b, order, config):  # pylint: disable=arguments-differ
        ctx.config = config
        ctx.order = order
        ctx.save_for_backward(t, x, b)
        return _kernel(config, x, b, t, order=order)

    @staticmethod
    def backward(ctx, grad):  # pylint: disable=arguments-differ
        t, x, b = ctx.saved_tensors
        config, order = ctx.config, ctx.order
        d_t = d_x = None
        if ctx.needs_input_grad[0]:
            d_t = _BiasActDerivative.apply(grad, x, b, order, config)
        if (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]) and not config.piecewise_linear:
            if order == 1:
                d_x = _BiasActDerivative.apply(grad * t, x, b, 2, config)
            else:
                d_x = grad * t * _reference_derivative(config, x, b, order + 1)
        return d_t, (d_x if ctx.needs_input_grad[1] else None), _bias_grad(config, d_x, b, ctx.needs_input_grad[2]), None, None


def _reference_derivative(config, x, b, order):
    """h^(order)(x + b) by repeated autograd on the reference activation (used past the second order)."""
    from . import bias_act  # pylint: disable=import-outside-toplevel
    with torch.enable_grad():
        z = x if b is None else x + b.reshape([-1 if i == config.dim else 1 for i in range(x.ndim)])
        if not z.requires_grad:
            z = z.detach().requires_grad_(True)  # Nothing above needs gradients through x here.
        d = bias_act.bias_act_ref(z, act=config.act, alpha=config.alpha, gain=config.gain, clamp=config.clamp)
        for _ in range(order):
            d, = torch.autograd.grad(d.sum(), [z], create_graph=True, allow_unused=True)
            if d is None:
                return torch.zeros_like(z)
    return d

#----------------------------------------------------------------------------
