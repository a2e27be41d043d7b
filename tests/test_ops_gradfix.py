"""CPU tests of conv2d_gradfix (weight-gradient switch, double backward), grid_sample_gradfix and fma."""

import pytest
import torch

from torch_utils.ops import conv2d_gradfix, fma, grid_sample_gradfix
from tests.ops_helpers import randn

F = torch.nn.functional

#----------------------------------------------------------------------------

CONVS = {
    'conv2d': (conv2d_gradfix.conv2d, F.conv2d, dict(stride=2, padding=1), (3, 2, 3, 3)),
    'conv_transpose2d': (conv2d_gradfix.conv_transpose2d, F.conv_transpose2d, dict(stride=2, padding=1, output_padding=1), (2, 3, 3, 3)),
}


@pytest.mark.parametrize('name', sorted(CONVS))
def test_gradfix_conv_matches_functional_forward_and_gradients(name):
    ours, theirs, kwargs, w_shape = CONVS[name]
    x = randn(2, 2, 5, 6, requires_grad=True)
    w = randn(*w_shape, seed=1, requires_grad=True)
    b = randn(3, seed=2, requires_grad=True)
    y1, y2 = ours(x, w, b, **kwargs), theirs(x, w, b, **kwargs)
    torch.testing.assert_close(y1, y2)
    g1 = torch.autograd.grad(y1.square().sum(), [x, w, b])
    g2 = torch.autograd.grad(y2.square().sum(), [x, w, b])
    for a, b_ in zip(g1, g2):
        torch.testing.assert_close(a, b_)


@pytest.mark.parametrize('name', sorted(CONVS))
def test_gradfix_conv_gradients_first_and_second_order(name):
    ours, _, kwargs, w_shape = CONVS[name]
    x = randn(1, 1, 3, 4, requires_grad=True)
    w = randn(*w_shape, seed=1)
    w = (w[:2, :1] if name == 'conv2d' else w[:1, :2]).clone().requires_grad_(True)  # Tiny: 1 -> 2 channels.
    func = lambda x, w: ours(x, w, **kwargs)
    assert torch.autograd.gradcheck(func, [x, w])
    assert torch.autograd.gradgradcheck(func, [x, w], fast_mode=True)  # Random projections; the full check costs ~10x.


@pytest.mark.parametrize('name', sorted(CONVS))
def test_no_weight_gradients_skips_weight_grad_but_keeps_input_grad(name):
    ours, theirs, kwargs, w_shape = CONVS[name]
    x = randn(2, 2, 5, 6, requires_grad=True)
    w = randn(*w_shape, seed=1, requires_grad=True)
    y = ours(x, w, **kwargs)
    with conv2d_gradfix.no_weight_gradients():
        y.square().sum().backward()
    assert w.grad is None
    expected, = torch.autograd.grad(theirs(x, w, **kwargs).square().sum(), [x])
    torch.testing.assert_close(x.grad, expected)


def test_r1_style_penalty_gets_the_same_weight_gradient_with_the_switch_on():
    # The R1 pattern: forward outside, input gradient with create_graph inside, penalty backward outside.
    def penalty(conv, use_switch):
        x = randn(2, 2, 6, 6, requires_grad=True)
        w1 = randn(3, 2, 3, 3, seed=1, requires_grad=True)
        w2 = randn(1, 3, 3, 3, seed=2, requires_grad=True)
        logits = conv(F.softplus(conv(x, w1, padding=1)), w2, stride=2)
        with conv2d_gradfix.no_weight_gradients(use_switch):
            grads, = torch.autograd.grad(logits.sum(), [x], create_graph=True)
        grads.square().sum().backward()
        return w1.grad, w2.grad
    for ours, reference in zip(penalty(conv2d_gradfix.conv2d, True), penalty(F.conv2d, False)):
        torch.testing.assert_close(ours, reference)


def test_switch_is_scoped_to_the_block_even_when_it_raises():
    assert not conv2d_gradfix.weight_gradients_disabled()
    with pytest.raises(RuntimeError):
        with conv2d_gradfix.no_weight_gradients():
            assert conv2d_gradfix.weight_gradients_disabled()
            with conv2d_gradfix.no_weight_gradients(disable=False):
                assert conv2d_gradfix.weight_gradients_disabled()  # Nested blocks cannot re-enable.
            raise RuntimeError('boom')
    assert not conv2d_gradfix.weight_gradients_disabled()
    with conv2d_gradfix.no_weight_gradients(disable=False):
        assert not conv2d_gradfix.weight_gradients_disabled()


def test_string_padding_and_no_grad_fall_back_to_functional():
    x, w = randn(1, 2, 5, 5), randn(3, 2, 3, 3, seed=1, requires_grad=True)
    torch.testing.assert_close(conv2d_gradfix.conv2d(x, w, padding='same'), F.conv2d(x, w, padding='same'))
    with torch.no_grad():
        torch.testing.assert_close(conv2d_gradfix.conv2d(x, w, groups=1), F.conv2d(x, w))

#----------------------------------------------------------------------------

def test_grid_sample_matches_bilinear_zeros_functional_and_has_second_order_gradients():
    x = randn(1, 2, 5, 6, requires_grad=True)
    grid = (torch.rand(1, 4, 3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2.2 - 1.1).requires_grad_(True)
    expected = F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    torch.testing.assert_close(grid_sample_gradfix.grid_sample(x, grid), expected)
    assert torch.autograd.gradcheck(grid_sample_gradfix.grid_sample, [x, grid])
    assert torch.autograd.gradgradcheck(grid_sample_gradfix.grid_sample, [x, grid])


def test_fma_broadcasts_and_differentiates_like_multiply_add():
    a = randn(2, 3, 1, requires_grad=True)
    b = randn(1, 3, 4, seed=1, requires_grad=True)
    c = randn(3, 1, seed=2, requires_grad=True)
    torch.testing.assert_close(fma.fma(a, b, c), a * b + c)
    assert torch.autograd.gradcheck(fma.fma, [a, b, c])
    assert torch.autograd.gradgradcheck(fma.fma, [a, b, c])
