"""Autograd wiring of the fused bias_act kernel, differentiable to any order.

The kernel computes, elementwise with z = x + b and h(z) = clamp(act(z) * gain):
order 0: h(z); order 1: dy * h'(z); order 2: dy * h''(z). Each order is an autograd Function whose
backward is written with the next order (and, past the second, with autograd on the reference), so
the CUDA path gives exact gradients of any order, not just first and second.

What the backward keeps (config.grad_from), as in stylegan2-ada-pytorch:
- 'output' (relu, lrelu, clamped linear): y only. h' is read from y's sign and |y| < clamp, and y is
  kept by the next layer anyway, so a layer holds no extra activation for its backward.
- 'constant' (linear without clamp): nothing, h' = gain. The output may then be modified in place
  (the resnet shortcuts' `add_`).
- 'input' (tanh, sigmoid, elu, selu, softplus, swish): x and b, which the curvature h'' needs.
"""

import collections

import torch

#----------------------------------------------------------------------------

# What the Functions need besides tensors. `plugin` is any object with the kernel's signature:
# plugin.bias_act(x, b, y, dy, dim, act, order, alpha, gain, clamp) -> tensor (tests pass a stand-in).
BiasActConfig = collections.namedtuple('BiasActConfig', [
    'plugin',           # The built extension (or a stand-in with the same signature).
    'dim',              # Dimension of x that the bias runs along.
    'act',              # Activation name (a key of bias_act.activation_funcs).
    'cuda_idx',         # The kernel's number for the activation.
    'piecewise_linear', # True when h'' is zero almost everywhere (linear, relu, lrelu).
    'grad_from',        # What h' is computed from: 'input', 'output' or 'constant' (see above).
    'alpha',            # Activation parameter.
    'gain',             # Output scale.
    'clamp',            # Clamp magnitude, negative for none.
])

GRAD_SOURCES = ('input', 'output', 'constant')


def apply(config, x, b):
    """clamp(act(x + b) * gain) through the kernel, with autograd support of any order."""
    assert config.grad_from in GRAD_SOURCES
    if b is not None and b.dtype != x.dtype:
        b = b.to(x.dtype)
    return _BiasAct.apply(x, b, config)

#----------------------------------------------------------------------------

def _kernel(config, x, b, dy, order, y=None):
    """One kernel call on x and b, or (order 1, config.grad_from == 'output') on the output y."""
    source = x if y is None else y
    if source.numel() == 0:  # The binding tells y from its empty stand-in by its size.
        return torch.empty_like(source)
    empty = source.new_empty([0])
    def given(t):
        return empty if t is None else t
    return config.plugin.bias_act(given(x), given(b), given(y), given(dy), config.dim,
                                  config.cuda_idx, order, config.alpha, config.gain, config.clamp)


def _bias_grad(config, dx, needed):
    """Gradient of the bias: dx summed over every dimension but the bias one."""
    if not needed or dx is None:
        return None
    return dx.sum([i for i in range(dx.ndim) if i != config.dim])


class _BiasAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, config):  # pylint: disable=arguments-differ
        y = _kernel(config, x, b, None, order=0)
        ctx.config = config
        if config.grad_from == 'input':
            ctx.save_for_backward(x, b)
        elif config.grad_from == 'output':
            ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, dy):  # pylint: disable=arguments-differ
        config = ctx.config
        dx = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            if config.grad_from == 'input':
                x, b = ctx.saved_tensors
                dx = _BiasActDerivative.apply(dy, x, b, 1, config)
            elif config.grad_from == 'output':
                y, = ctx.saved_tensors
                dx = _BiasActSlope.apply(dy, y, config)
            else:
                dx = dy if config.gain == 1 else dy * config.gain
        return (dx if ctx.needs_input_grad[0] else None), _bias_grad(config, dx, ctx.needs_input_grad[1]), None


class _BiasActSlope(torch.autograd.Function):
    """t * h'(z) for linear, relu and lrelu, with h' read from the output y; linear in t, and h'' = 0."""

    @staticmethod
    def forward(ctx, t, y, config):  # pylint: disable=arguments-differ
        ctx.config = config
        ctx.save_for_backward(y)
        return _kernel(config, None, None, t, order=1, y=y)

    @staticmethod
    def backward(ctx, grad):  # pylint: disable=arguments-differ
        y, = ctx.saved_tensors
        d_t = _BiasActSlope.apply(grad, y, ctx.config) if ctx.needs_input_grad[0] else None
        return d_t, None, None


class _BiasActDerivative(torch.autograd.Function):
    """t * h^(order)(x + b) for order 1 or 2; linear in t."""

    @staticmethod
    def forward(ctx, t, x, b, order, config):  # pylint: disable=arguments-differ
        ctx.config = config
        ctx.order = order
        # t enters the gradient with respect to x only through h'', which piecewise-linear activations lack.
        ctx.save_for_backward(None if config.piecewise_linear else t, x, b)
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
        return d_t, (d_x if ctx.needs_input_grad[1] else None), _bias_grad(config, d_x, ctx.needs_input_grad[2]), None, None


def _reference_derivative(config, x, b, order):
    """h^(order)(x + b) by repeated autograd on the reference activation (used past the second order)."""
    from . import bias_act  # pylint: disable=import-outside-toplevel  # A cycle: bias_act imports this module.
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
