"""CPU tests of the CUDA paths' autograd wiring (gradients of any order, what backward keeps, filter preparation),
with the kernels replaced by reference stand-ins of the same signature."""

import pytest
import torch

from torch_utils.ops import bias_act, bias_act_cuda, upfirdn2d, upfirdn2d_cuda
from tests.ops_helpers import BIAS_ACT_CASES, UPFIRDN2D_CASES, ReferenceBiasActPlugin, ReferenceUpFirDn2dPlugin, randn

#----------------------------------------------------------------------------

@pytest.mark.parametrize('taps, separable, up, down, padding, flip_filter, gain', UPFIRDN2D_CASES)
def test_upfirdn2d_kernel_path_matches_reference_forward(taps, separable, up, down, padding, flip_filter, gain):
    x = randn(2, 3, 5, 7)
    f = upfirdn2d.setup_filter(taps, separable=separable, normalize=False)
    plugin = ReferenceUpFirDn2dPlugin()
    y = upfirdn2d_cuda.apply(upfirdn2d.cuda_config(plugin, up, down, padding, flip_filter, gain), x, f)
    torch.testing.assert_close(y, upfirdn2d.upfirdn2d_ref(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain),
                               rtol=1e-5, atol=1e-6)  # float32 taps, gain applied on one axis instead of split.
    assert plugin.calls == (2 if f.ndim == 1 else 1)


@pytest.mark.parametrize('taps, separable, up, down, padding, flip_filter, gain', UPFIRDN2D_CASES)
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

@pytest.mark.parametrize('act, clamp', BIAS_ACT_CASES)
def test_bias_act_kernel_path_gradients_first_and_second_order(act, clamp):
    x = randn(2, 3, 1, 3) * 2
    x = (x + 0.1 * x.sign()).requires_grad_(True)  # Away from the relu/lrelu kink.
    b = (randn(3, seed=4) * 0.01).requires_grad_(True)
    config = bias_act.cuda_config(ReferenceBiasActPlugin(), x, b, 1, act, None, None, clamp)
    func = lambda x, b: bias_act_cuda.apply(config, x, b)
    torch.testing.assert_close(func(x, b), bias_act.bias_act_ref(x, b, act=act, clamp=clamp))
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

#----------------------------------------------------------------------------
# What the kernel path keeps for backward: the output for piecewise-linear activations (which the
# next layer keeps anyway), nothing for plain linear, the input and bias only where h'' needs them.

@pytest.mark.parametrize('act, alpha, clamp, kept', [
    ('relu', None, None, 'y'),
    ('lrelu', None, None, 'y'),
    ('lrelu', None, 1.5, 'y'),
    ('linear', None, 1.5, 'y'),
    ('linear', None, None, ''),
    ('lrelu', -0.5, None, 'xb'),  # A negative slope: the output's sign no longer tells the input's.
    ('tanh', None, None, 'xb'),
    ('swish', None, 1.5, 'xb'),
])
def test_bias_act_kernel_path_saves_only_what_its_backward_reads(act, alpha, clamp, kept):
    x = randn(2, 3, 4, requires_grad=True)
    b = randn(3, seed=1, requires_grad=True)
    y = bias_act_cuda.apply(bias_act.cuda_config(ReferenceBiasActPlugin(), x, b, 1, act, alpha, None, clamp), x, b)
    expected = {'y': [y], '': [], 'xb': [x, b]}[kept]
    assert [t.data_ptr() for t in y.grad_fn.saved_tensors] == [t.data_ptr() for t in expected]


def test_bias_act_kernel_path_reads_the_slope_from_the_output_in_first_and_second_order():
    x = randn(2, 3, 4, requires_grad=True)
    plugin = ReferenceBiasActPlugin()
    y = bias_act_cuda.apply(bias_act.cuda_config(plugin, x, None, 1, 'lrelu', None, None, 1.5), x, None)
    dx, = torch.autograd.grad(y, [x], torch.ones_like(y), create_graph=True)
    assert [t.data_ptr() for t in dx.grad_fn.saved_tensors] == [y.data_ptr()]  # Double backward keeps y too.
    dx.square().sum().backward()
    assert plugin.sources == ['x', 'y', 'y'] and plugin.orders == [0, 1, 1]


def test_bias_act_kernel_path_first_derivative_of_a_smooth_activation_keeps_its_curvature_inputs():
    x = randn(2, 3, 4, requires_grad=True)
    b = randn(3, seed=1, requires_grad=True)
    y = bias_act_cuda.apply(bias_act.cuda_config(ReferenceBiasActPlugin(), x, b, 1, 'tanh', None, None, None), x, b)
    dy = torch.ones_like(y)
    dx, = torch.autograd.grad(y, [x], dy, create_graph=True)
    assert [t.data_ptr() for t in dx.grad_fn.saved_tensors] == [dy.data_ptr(), x.data_ptr(), b.data_ptr()]


def test_bias_act_kernel_path_linear_output_can_be_modified_in_place():
    # The resnet shortcut does `shortcut.add_(x)` on a linear, unclamped bias_act output.
    x = randn(2, 3, 4, requires_grad=True)
    y = bias_act_cuda.apply(bias_act.cuda_config(ReferenceBiasActPlugin(), x, None, 1, 'linear', None, 0.5, None), x, None)
    y.add_(1).sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, 0.5))


@pytest.mark.parametrize('act, alpha, gain', [('lrelu', 0.3, -2.0), ('relu', None, -1.0), ('lrelu', 0.0, 0.7), ('lrelu', -0.5, 1.0)])
def test_bias_act_kernel_path_gradient_from_the_output_handles_any_gain_and_slope(act, alpha, gain):
    x = randn(3, 4) * 2
    x = (x + 0.1 * x.sign()).requires_grad_(True)
    b = (randn(4, seed=2) * 0.01).requires_grad_(True)
    config = bias_act.cuda_config(ReferenceBiasActPlugin(), x, b, 1, act, alpha, gain, 1.5)
    assert torch.autograd.gradcheck(lambda x, b: bias_act_cuda.apply(config, x, b), [x, b])

#----------------------------------------------------------------------------
# The kernel's filter weights are prepared once per filter tensor.

def _count_preparations(monkeypatch):
    calls = []
    prepare = upfirdn2d_cuda._prepare_weights  # pylint: disable=protected-access

    def counted(*args):
        calls.append(args[1:])
        return prepare(*args)
    monkeypatch.setattr(upfirdn2d_cuda, '_prepare_weights', counted)
    return calls


@pytest.mark.parametrize('separable', [False, True])
def test_upfirdn2d_kernel_path_prepares_each_filter_once(monkeypatch, separable):
    calls = _count_preparations(monkeypatch)
    f = upfirdn2d.setup_filter([1, 3, 3, 1], separable=separable)
    config = upfirdn2d.cuda_config(ReferenceUpFirDn2dPlugin(), up=2, padding=[2, 1, 2, 1], gain=4)
    expected = None
    for _ in range(3):
        x = randn(1, 2, 4, 4, requires_grad=True)
        y = upfirdn2d_cuda.apply(config, x, f)
        y.square().sum().backward()
        expected = expected or (y.detach(), x.grad)
        torch.testing.assert_close((y.detach(), x.grad), expected)
    assert calls == [(False, 4.0, torch.device('cpu')), (True, 4.0, torch.device('cpu'))]  # Forward, then its adjoint.
    torch.testing.assert_close(y, upfirdn2d.upfirdn2d_ref(x, f, up=2, padding=[2, 1, 2, 1], gain=4))


def test_upfirdn2d_prepared_weights_are_flipped_scaled_and_split_over_axes():
    f2 = upfirdn2d.setup_filter([[1, 2], [3, 4]], normalize=False)
    w, column = upfirdn2d_cuda.prepared_weights(f2, False, 3, torch.device('cpu'))
    assert column is None
    torch.testing.assert_close(w, torch.tensor([[12., 9.], [6., 3.]]))
    f1 = upfirdn2d.setup_filter([1, 2, 5], separable=True, normalize=False)
    row, column = upfirdn2d_cuda.prepared_weights(f1, True, 2, torch.device('cpu'))
    torch.testing.assert_close(row, torch.tensor([[2., 4., 10.]]))
    torch.testing.assert_close(column, torch.tensor([[1.], [2.], [5.]]))
    assert upfirdn2d_cuda.prepared_weights(f1, True, 2, torch.device('cpu'))[0] is row


def test_upfirdn2d_prepared_weights_follow_in_place_changes_of_the_filter(monkeypatch):
    calls = _count_preparations(monkeypatch)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    config = upfirdn2d.cuda_config(ReferenceUpFirDn2dPlugin(), down=2, padding=1)
    x = randn(1, 1, 6, 6)
    upfirdn2d_cuda.apply(config, x, f)
    with torch.no_grad():
        f.mul_(2)  # As a loaded state dict or G_ema's buffer copy would.
    torch.testing.assert_close(upfirdn2d_cuda.apply(config, x, f), upfirdn2d.upfirdn2d_ref(x, f, down=2, padding=1))
    assert len(calls) == 2


def test_upfirdn2d_prepared_weights_are_dropped_with_their_filter():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    upfirdn2d_cuda.apply(upfirdn2d.cuda_config(ReferenceUpFirDn2dPlugin(), up=2, padding=2), randn(1, 1, 3, 3), f)
    key = (id(f), False, 1.0, torch.device('cpu'))
    assert key in upfirdn2d_cuda._prepared  # pylint: disable=protected-access
    del f
    assert key not in upfirdn2d_cuda._prepared  # pylint: disable=protected-access


def test_upfirdn2d_kernel_path_accepts_a_filter_made_in_inference_mode():
    x = randn(1, 2, 4, 4)
    with torch.inference_mode():
        f = upfirdn2d.setup_filter([1, 3, 3, 1])  # An inference tensor: no version counter to key a cache on.
        y = upfirdn2d_cuda.apply(upfirdn2d.cuda_config(ReferenceUpFirDn2dPlugin(), up=2, padding=[2, 1, 2, 1]), x, f)
    torch.testing.assert_close(y, upfirdn2d.upfirdn2d_ref(x, f, up=2, padding=[2, 1, 2, 1]))
