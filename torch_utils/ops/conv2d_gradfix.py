"""conv2d / conv_transpose2d whose weight gradient can be switched off for a block of code.

The R1 and path-length passes only need gradients with respect to the images, but still need those
gradients to be differentiable with respect to the weights (the penalty is trained through them).
Inside `no_weight_gradients()`, these convolutions skip computing the weight gradient in their
backward pass, while the input gradient stays an ordinary, differentiable PyTorch computation.
Only public PyTorch APIs are used (stylegan2-ada-pytorch called a private ATen op that PyTorch 1.11
removed); outside the block they are plain torch.nn.functional calls.
"""

import contextlib
import threading

import torch

#----------------------------------------------------------------------------

_state = threading.local()   # depth of no_weight_gradients blocks in this thread


@contextlib.contextmanager
def no_weight_gradients(disable=True):
    """Within the block (when `disable`), conv weight gradients are not computed by these convolutions."""
    previous = getattr(_state, 'depth', 0)
    _state.depth = previous + (1 if disable else 0)
    try:
        yield
    finally:
        _state.depth = previous


def weight_gradients_disabled():
    return getattr(_state, 'depth', 0) > 0

#----------------------------------------------------------------------------

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # pylint: disable=redefined-builtin
    """torch.nn.functional.conv2d, without the weight gradient inside no_weight_gradients()."""
    if weight_gradients_disabled() and torch.is_grad_enabled() and weight.requires_grad:
        return _conv_without_weight_grad(input, weight, bias, False, stride, padding, 0, dilation, groups)
    return torch.nn.functional.conv2d(input, weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):  # pylint: disable=redefined-builtin
    """torch.nn.functional.conv_transpose2d, without the weight gradient inside no_weight_gradients()."""
    if weight_gradients_disabled() and torch.is_grad_enabled() and weight.requires_grad:
        return _conv_without_weight_grad(input, weight, bias, True, stride, padding, output_padding, dilation, groups)
    return torch.nn.functional.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation)

#----------------------------------------------------------------------------

def _conv_without_weight_grad(x, weight, bias, transpose, stride, padding, output_padding, dilation, groups):
    """The convolution as an autograd Function whose backward returns no weight gradient."""
    # Bias gradients are cheap and unaffected; apply the bias outside the Function.
    y = _NoWeightGradConv.apply(x, weight, transpose, stride, padding, output_padding, dilation, groups)
    if bias is not None:
        y = y + bias.reshape([1, -1, 1, 1])
    return y


class _NoWeightGradConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, transpose, stride, padding, output_padding, dilation, groups):  # pylint: disable=arguments-differ
        ctx.save_for_backward(weight)
        ctx.conf = (transpose, stride, padding, output_padding, dilation, groups, x.shape)
        if transpose:
            return torch.nn.functional.conv_transpose2d(x, weight, None, stride, padding, output_padding, groups, dilation)
        return torch.nn.functional.conv2d(x, weight, None, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad_output):  # pylint: disable=arguments-differ
        weight, = ctx.saved_tensors
        transpose, stride, padding, output_padding, dilation, groups, input_shape = ctx.conf
        grad_input = None
        if ctx.needs_input_grad[0]:
            # Built from public, differentiable ops, so the result can itself be differentiated
            # (with respect to the weight as well, which is how R1 trains through it).
            if transpose:
                grad_input = torch.nn.functional.conv2d(grad_output, weight, None, stride, padding, dilation, groups)
            else:
                grad_input = torch.nn.grad.conv2d_input(input_shape, weight, grad_output, stride, padding, dilation, groups)
        return grad_input, None, None, None, None, None, None, None

#----------------------------------------------------------------------------
