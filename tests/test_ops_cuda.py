"""GPU tests: the CUDA kernels against the references, forward and first/second-order gradients, fp32/fp16, both layouts."""

import warnings

import pytest
import torch

from torch_utils.ops import bias_act, conv2d_gradfix, conv2d_resample, grid_sample_gradfix, upfirdn2d
from tests.ops_helpers import BIAS_ACT_CASES, UPFIRDN2D_CASES

pytestmark = pytest.mark.gpu

LAYOUTS = [torch.contiguous_format, torch.channels_last]
TOLERANCE = {torch.float32: dict(rtol=1e-4, atol=1e-4), torch.float16: dict(rtol=1e-2, atol=1e-2)}
ORDERS_OF_BIAS_ACT = ('output', 'grad x', 'grad b', 'second-order grad x', 'second-order grad b')
ORDERS_OF_UPFIRDN2D = ('output', 'grad x', 'second-order grad x')

#----------------------------------------------------------------------------

def _input(shape, dtype, layout, seed=0, scale=1.0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator) * scale
    return x.to(device='cuda', dtype=dtype).contiguous(memory_format=layout).requires_grad_(True)


def _assert_close(actual, expected, measured, quantity, rtol, atol):
    """assert_close, recording the largest share of its allowance |e - a| <= atol + rtol * |e| that was used."""
    actual, expected = actual.float().cpu(), expected.float().cpu()
    share = ((actual - expected).abs() / (atol + rtol * expected.abs())).max().item() if expected.numel() else 0.0
    measured(f'{quantity}: share of atol + rtol * |reference|', share, 1.0)
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


def _first_and_second_order(func, inputs):
    """The output, the gradients of sum(y^2 * r) and the gradients of the squared first gradient of x."""
    y = func(*inputs)
    weights = torch.linspace(-1, 1, y.numel(), device=y.device).reshape(y.shape).to(y.dtype)
    grads = torch.autograd.grad((y.float() * weights.float()).square().sum(), inputs, create_graph=True)
    second = torch.autograd.grad(grads[0].float().square().sum(), inputs, allow_unused=True)
    return [y, *grads, *[torch.zeros_like(i) if g is None else g for g, i in zip(second, inputs)]]


def test_plugins_build_on_a_gpu_machine():
    assert bias_act._plugin() is not None  # pylint: disable=protected-access
    assert upfirdn2d._plugin() is not None  # pylint: disable=protected-access


def test_plugins_pass_their_first_use_self_check_on_this_gpu():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        x = torch.zeros([1, 1, 4, 4], device='cuda')
        assert bias_act._checked_plugin(x) is not None  # pylint: disable=protected-access
        assert upfirdn2d._checked_plugin(x) is not None  # pylint: disable=protected-access


def test_bias_act_cuda_keeps_only_its_output_for_lrelu_backward():
    x = _input([4, 8, 6, 6], torch.float16, torch.channels_last, scale=2)
    b = _input([8], torch.float16, torch.contiguous_format, seed=1)
    y = bias_act.bias_act(x, b, act='lrelu', clamp=256)
    assert [t.data_ptr() for t in y.grad_fn.saved_tensors] == [y.data_ptr()]

#----------------------------------------------------------------------------

@pytest.mark.parametrize('layout', LAYOUTS)
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])
@pytest.mark.parametrize('act, clamp', BIAS_ACT_CASES)
def test_bias_act_cuda_matches_reference(act, clamp, dtype, layout, measured):
    x = _input([3, 8, 5, 7], dtype, layout, scale=2)
    b = _input([8], dtype, torch.contiguous_format, seed=1)
    ours = _first_and_second_order(lambda x, b: bias_act.bias_act(x, b, act=act, clamp=clamp, impl='cuda'), [x, b])
    ref = _first_and_second_order(lambda x, b: bias_act.bias_act(x, b, act=act, clamp=clamp, impl='ref'), [x, b])
    assert ours[0].dtype == dtype and ours[0].is_contiguous(memory_format=layout)
    assert len(ours) == len(ref) == len(ORDERS_OF_BIAS_ACT)
    for a, e, quantity in zip(ours, ref, ORDERS_OF_BIAS_ACT):
        _assert_close(a, e, measured, f'{str(dtype)[6:]} {quantity}', **TOLERANCE[dtype])


def test_bias_act_cuda_bias_along_last_dim():
    x = _input([6, 5], torch.float32, torch.contiguous_format)
    b = _input([5], torch.float32, torch.contiguous_format, seed=1)
    torch.testing.assert_close(bias_act.bias_act(x, b, dim=1, act='tanh'), bias_act.bias_act(x, b, dim=1, act='tanh', impl='ref'))

#----------------------------------------------------------------------------

@pytest.mark.parametrize('layout', LAYOUTS)
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])
@pytest.mark.parametrize('taps, separable, up, down, padding, flip_filter, gain', UPFIRDN2D_CASES)
def test_upfirdn2d_cuda_matches_reference(taps, separable, up, down, padding, flip_filter, gain, dtype, layout, measured):
    x = _input([2, 5, 9, 11], dtype, layout)
    f = upfirdn2d.setup_filter(taps, device='cuda', separable=separable)
    kwargs = dict(up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    ours = _first_and_second_order(lambda x: upfirdn2d.upfirdn2d(x, f, impl='cuda', **kwargs), [x])
    ref = _first_and_second_order(lambda x: upfirdn2d.upfirdn2d(x, f, impl='ref', **kwargs), [x])
    assert ours[0].dtype == dtype and ours[0].is_contiguous(memory_format=layout)
    assert len(ours) == len(ref) == len(ORDERS_OF_UPFIRDN2D)
    for a, e, quantity in zip(ours, ref, ORDERS_OF_UPFIRDN2D):
        _assert_close(a, e, measured, f'{str(dtype)[6:]} {quantity}', **TOLERANCE[dtype])


@pytest.mark.parametrize('up, down', [(2, 1), (1, 2), (1, 1)])
def test_conv2d_resample_on_cuda_matches_cpu(up, down, measured):
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    w = torch.randn(6, 4, 3, 3, dtype=torch.float64)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    kwargs = dict(up=up, down=down, padding=1, flip_weight=(up == 1))
    expected = conv2d_resample.conv2d_resample(x, w, f, **kwargs)
    y = conv2d_resample.conv2d_resample(x.cuda().float(), w.cuda().float(), f.cuda(), **kwargs)
    _assert_close(y, expected, measured, 'float32 on CUDA vs float64 on the CPU', rtol=1e-4, atol=1e-4)


def test_grid_sample_second_order_gradients_on_cuda_match_cpu():
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64)
    grid = torch.rand(1, 4, 3, 2, dtype=torch.float64) * 2.2 - 1.1

    def second_order(device):
        xd = x.to(device).requires_grad_(True)
        gd = grid.to(device).requires_grad_(True)
        g, = torch.autograd.grad(grid_sample_gradfix.grid_sample(xd, gd).square().sum(), [xd], create_graph=True)
        return [t.cpu() for t in torch.autograd.grad(g.square().sum(), [xd, gd])]

    for a, e in zip(second_order('cuda'), second_order('cpu')):
        torch.testing.assert_close(a, e)


def test_no_weight_gradients_on_cuda_keeps_input_gradient():
    x = torch.randn(2, 3, 8, 8, device='cuda', requires_grad=True)
    w = torch.randn(4, 3, 3, 3, device='cuda', requires_grad=True)
    y = conv2d_gradfix.conv2d(x, w, padding=1)
    with conv2d_gradfix.no_weight_gradients():
        g, = torch.autograd.grad(y.square().sum(), [x], create_graph=True)
    g.square().sum().backward()
    expected_g, = torch.autograd.grad(torch.nn.functional.conv2d(x, w, padding=1).square().sum(), [x])
    torch.testing.assert_close(g, expected_g)
    assert w.grad is not None and torch.isfinite(w.grad).all()
