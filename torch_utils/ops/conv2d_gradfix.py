"""conv2d / conv_transpose2d whose weight gradient can be switched off for a block of code.

The R1 and path-length passes differentiate the discriminator (or generator) output with respect to
the images (or ws) only, but must keep that gradient differentiable, because the penalty is trained
through it. Inside `no_weight_gradients()`, the backward pass of these convolutions returns no
weight gradient; the input gradient stays an ordinary, differentiable computation, so gradients of
any order work. The switch is read when the backward pass runs, so the usual pattern works:

    logits = D(img)                                   # forward outside the block
    with conv2d_gradfix.no_weight_gradients():
        grads, = torch.autograd.grad(logits.sum(), [img], create_graph=True)
    (grads.square().sum() * gamma).backward()         # weights get their gradient here

Only public PyTorch APIs are used (torch.nn.grad and torch.nn.functional; stylegan2-ada-pytorch
called a private ATen op that PyTorch 1.11 removed). The switch lives in the `with` block alone:
it is thread-local and restored on exit, even when the block raises.
"""

import contextlib
import threading

import torch

#----------------------------------------------------------------------------

_blocks = threading.local()   # How many no_weight_gradients() blocks this thread is inside.


@contextlib.contextmanager
def no_weight_gradients(disable=True):
    """Within the block (when `disable`), backward passes through these convolutions skip the weight gradient."""
    previous = getattr(_blocks, 'depth', 0)
    _blocks.depth = previous + (1 if disable else 0)
    try:
        yield
    finally:
        _blocks.depth = previous


def weight_gradients_disabled():
    """True inside a no_weight_gradients() block in this thread."""
    return getattr(_blocks, 'depth', 0) > 0

#----------------------------------------------------------------------------

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # pylint: disable=redefined-builtin
    """torch.nn.functional.conv2d whose weight gradient is skipped inside no_weight_gradients()."""
    if _use_custom_function(input, weight, padding):
        y = _GradfixConv2d.apply(input, weight, (False, _pair(stride), _pair(padding), (0, 0), _pair(dilation), groups))
        return y if bias is None else y + bias.reshape([1, -1, 1, 1])
    return torch.nn.functional.conv2d(input, weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):  # pylint: disable=redefined-builtin
    """torch.nn.functional.conv_transpose2d whose weight gradient is skipped inside no_weight_gradients()."""
    if _use_custom_function(input, weight, padding):
        conf = (True, _pair(stride), _pair(padding), _pair(output_padding), _pair(dilation), groups)
        y = _GradfixConv2d.apply(input, weight, conf)
        return y if bias is None else y + bias.reshape([1, -1, 1, 1])
    return torch.nn.functional.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation)

#----------------------------------------------------------------------------

def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def _use_custom_function(x, weight, padding):
    """The custom Function is only worth it when a weight gradient could be asked for later."""
    if not torch.is_grad_enabled() or not weight.requires_grad:
        return False
    if isinstance(padding, str) or x.ndim != 4:
        return False  # padding='same'/'valid' and unbatched inputs: plain torch.nn.functional.
    return True


class _GradfixConv2d(torch.autograd.Function):
    """A 2-D (transposed) convolution whose backward is written with differentiable public ops."""

    @staticmethod
    def forward(ctx, x, weight, conf):  # pylint: disable=arguments-differ
        transpose, stride, padding, output_padding, dilation, groups = conf
        ctx.save_for_backward(x, weight)
        ctx.conf = conf
        if transpose:
            return torch.nn.functional.conv_transpose2d(x, weight, None, stride, padding, output_padding, groups, dilation)
        return torch.nn.functional.conv2d(x, weight, None, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad_output):  # pylint: disable=arguments-differ
        x, weight = ctx.saved_tensors
        transpose, stride, padding, _output_padding, dilation, groups = ctx.conf
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            if transpose:  # The adjoint of a transposed convolution is the convolution.
                grad_x = torch.nn.functional.conv2d(grad_output, weight, None, stride, padding, dilation, groups)
            else:
                grad_x = torch.nn.grad.conv2d_input(x.shape, weight, grad_output, stride, padding, dilation, groups)
        if ctx.needs_input_grad[1] and not weight_gradients_disabled():
            if transpose:  # <conv_transpose(x, w), g> = <x, conv(g, w)>: roles of x and g swap.
                grad_weight = torch.nn.grad.conv2d_weight(grad_output, weight.shape, x, stride, padding, dilation, groups)
            else:
                grad_weight = torch.nn.grad.conv2d_weight(x, weight.shape, grad_output, stride, padding, dilation, groups)
        return grad_x, grad_weight, None

#----------------------------------------------------------------------------
