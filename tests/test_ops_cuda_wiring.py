"""CPU tests of the CUDA paths' autograd wiring, with the kernels replaced by reference stand-ins of the same signature."""

import pytest
import torch

from torch_utils.ops import bias_act, bias_act_cuda, upfirdn2d, upfirdn2d_cuda
from tests.ops_helpers import ReferenceBiasActPlugin, ReferenceUpFirDn2dPlugin, randn

#----------------------------------------------------------------------------

UPFIRDN_CASES = [
    # taps, separable, up, down, padding, flip_filter, gain
    ([1, 3, 3, 1], False, 2, 1, [2, 1, 2, 1], False, 4),
    ([1, 3, 3, 1], True, 1, 2, [1, 1, 1, 1], False, 1),
    ([1, 2, 5], True, [3, 1], [1, 2], [0, 2, -1, 3], True, 1.5),
    ([[1, 2], [0, -1], [3, 1]], None, [1, 2], [2, 1], [1, 0, 0, 2], False, 1),
    ([[1, 2, 4]], None, [2, 3], [3, 2], [-1, 2, 1, -1], True, 0.5),
]


@pytest.mark.parametrize('taps, separable, up, down, padding, flip_filter, gain', UPFIRDN_CASES)
def test_upfirdn2d_kernel_path_matches_reference_forward(taps, separable, up, down, padding, flip_filter, gain):
    x = randn(2, 3, 5, 7)
    f = upfirdn2d.setup_filter(taps, separable=separable, normalize=False)
    plugin = ReferenceUpFirDn2dPlugin()
    y = upfirdn2d_cuda.apply(upfirdn2d.cuda_config(plugin, up, down, padding, flip_filter, gain), x, f)
    torch.testing.assert_close(y, upfirdn2d.upfirdn2d_ref(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain),
                               rtol=1e-5, atol=1e-6)  # float32 taps, gain applied on one axis instead of split.
    assert plugin.calls == (2 if f.ndim == 1 else 1)


@pytest.mark.parametrize('taps, separable, up, down, padding, flip_filter, gain', UPFIRDN_CASES)
def test_upfirdn2d_kernel_path_adjoint_gives_gradients_of_any_order(taps, separable, up, down, padding, flip_filter, gain):
    x = randn(1, 1, 5, 4, requires_grad=True)
    f = upfirdn2d.setup_filter(taps, separable=separable)
    config = upfirdn2d.cuda_config(ReferenceUpFirDn2dPlugin(), up, down, padding, flip_filter, gain)
    func = lambda x: upfirdn2d_cuda.apply(config, x, f)
    assert torch.autograd.gradcheck(func, [x])
    assert torch.autograd.gradgradcheck(func, [x], fast_mode=True)  # Random projections; the full check costs ~10x.


def test_upfirdn2d_kernel_path_backward_runs_on_the_kernel():
    x = randn(1, 1, 4, 4, requires_grad=True)
    plugin = ReferenceUpFirDn2dPlugin()
    y = upfirdn2d_cuda.apply(upfirdn2d.cuda_config(plugin, up=2, padding=[2, 1, 2, 1]), x, upfirdn2d.setup_filter([1, 3, 3, 1]))
    y.square().sum().backward()
    assert plugin.calls == 2 and x.grad.shape == x.shape

#----------------------------------------------------------------------------

@pytest.mark.parametrize('act', sorted(bias_act.activation_funcs))
def test_bias_act_kernel_path_gradients_first_and_second_order(act):
    x = randn(2, 3, 1, 3) * 2
    x = (x + 0.1 * x.sign()).requires_grad_(True)  # Away from the relu/lrelu kink.
    b = (randn(3, seed=4) * 0.01).requires_grad_(True)
    config = bias_act.cuda_config(ReferenceBiasActPlugin(), x, b, 1, act, None, None, 1.5 if act == 'lrelu' else None)
    func = lambda x, b: bias_act_cuda.apply(config, x, b)
    torch.testing.assert_close(func(x, b), bias_act.bias_act_ref(x, b, act=act, clamp=config.clamp if config.clamp >= 0 else None))
    assert torch.autograd.gradcheck(func, [x, b])
    assert torch.autograd.gradgradcheck(func, [x, b])


def test_bias_act_kernel_path_third_order_matches_reference():
    x = randn(2, 4, requires_grad=True)
    b = randn(4, seed=1, requires_grad=True)
    plugin = ReferenceBiasActPlugin()
    config = bias_act.cuda_config(plugin, x, b, 1, 'swish', None, None, None)

    def third(func):
        y = func(x, b).sum()
        g1, = torch.autograd.grad(y, [x], create_graph=True)
        g2, = torch.autograd.grad(g1.sum(), [x], create_graph=True)
        return torch.autograd.grad(g2.sum(), [x, b])

    ours = third(lambda x, b: bias_act_cuda.apply(config, x, b))
    expected = third(lambda x, b: bias_act.bias_act_ref(x, b, act='swish'))
    for a, e in zip(ours, expected):
        torch.testing.assert_close(a, e)
    assert set(plugin.orders) == {0, 1, 2}


def test_bias_act_kernel_path_skips_second_derivative_for_piecewise_linear():
    # R1 through lrelu layers: the double backward needs only first-order kernel calls.
    x = randn(2, 3, 4, requires_grad=True)
    plugin = ReferenceBiasActPlugin()
    config = bias_act.cuda_config(plugin, x, None, 1, 'lrelu', None, None, None)
    g, = torch.autograd.grad(bias_act_cuda.apply(config, x, None).square().sum(), [x], create_graph=True)
    g.square().sum().backward()
    assert 2 not in plugin.orders and x.grad is not None
