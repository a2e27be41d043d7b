"""The CUDA kernels' own arithmetic, compiled by nvcc and run on the CPU, against the references (no GPU needed).

The .cu files keep their per-element code in __host__ __device__ functions; ops_helpers compiles a
host loop around them. With it behind the bindings' signatures, the CUDA autograd path is checked
end to end here: forward, first and second order, fp64/fp32/fp16, contiguous and channels_last.
"""

import shutil

import pytest
import torch

from torch_utils.ops import bias_act, bias_act_cuda, upfirdn2d, upfirdn2d_cuda
from tests.ops_helpers import BIAS_ACT_CASES, UPFIRDN2D_CASES, HostKernelPlugin, build_host_kernels, randn

pytestmark = pytest.mark.skipif(shutil.which('nvcc') is None, reason='nvcc is not installed')

TOLERANCE = {  # float64: the filter taps are float32 in both paths, scaled in a different order.
    torch.float64: dict(rtol=1e-6, atol=1e-6),
    torch.float32: dict(rtol=1e-5, atol=1e-5),
    torch.float16: dict(rtol=1e-2, atol=1e-2),
}
LAYOUTS = [torch.contiguous_format, torch.channels_last]


@pytest.fixture(scope='module')
def plugin(tmp_path_factory):
    return HostKernelPlugin(build_host_kernels(str(tmp_path_factory.mktemp('ops_host'))))


def _derivatives(func, inputs):
    """Output, first-order gradients of a weighted square, and second-order gradients through them."""
    y = func(*inputs)
    weights = torch.linspace(-1, 1, y.numel(), dtype=torch.float64).reshape(y.shape)
    grads = torch.autograd.grad((y.double() * weights).square().sum(), inputs, create_graph=True)
    second = torch.autograd.grad(grads[0].double().square().sum(), inputs, allow_unused=True)
    return [y, *grads, *[torch.zeros_like(i) if g is None else g for g, i in zip(second, inputs)]]

#----------------------------------------------------------------------------

@pytest.mark.parametrize('dtype', [torch.float64, torch.float32, torch.float16])
@pytest.mark.parametrize('act, clamp', BIAS_ACT_CASES)
def test_bias_act_kernel_matches_reference_to_second_order(plugin, act, clamp, dtype):
    for layout in LAYOUTS:
        x = (randn(2, 3, 2, 3) * 3).to(dtype).contiguous(memory_format=layout).requires_grad_(True)
        b = randn(3, seed=1).to(dtype).requires_grad_(True)
        config = bias_act.cuda_config(plugin, x, b, 1, act, None, None, clamp)
        ours = _derivatives(lambda x, b: bias_act_cuda.apply(config, x, b), [x, b])
        if dtype == torch.float16:  # The kernel computes in float32; compare with a float32 reference.
            x, b = x.detach().float().requires_grad_(True), b.detach().float().requires_grad_(True)
        ref = _derivatives(lambda x, b: bias_act.bias_act_ref(x, b, act=act, clamp=clamp), [x, b])
        assert ours[0].dtype == dtype and ours[0].is_contiguous(memory_format=layout)
        for a, e in zip(ours, ref):
            torch.testing.assert_close(a.double(), e.double(), **TOLERANCE[dtype])


def test_bias_act_kernel_bias_along_other_dims(plugin):
    x = randn(4, 3, 5)
    b = randn(5, seed=1)
    y = bias_act_cuda.apply(bias_act.cuda_config(plugin, x, b, 2, 'elu', None, None, None), x, b)
    torch.testing.assert_close(y, bias_act.bias_act_ref(x, b, dim=2, act='elu'))


def test_bias_act_kernel_gradcheck_in_float64(plugin):
    x = (randn(2, 3) * 2).requires_grad_(True)
    b = randn(3, seed=1).requires_grad_(True)
    config = bias_act.cuda_config(plugin, x, b, 1, 'tanh', None, 0.5, None)
    func = lambda x, b: bias_act_cuda.apply(config, x, b)
    assert torch.autograd.gradcheck(func, [x, b])
    assert torch.autograd.gradgradcheck(func, [x, b])

#----------------------------------------------------------------------------

@pytest.mark.parametrize('dtype', [torch.float64, torch.float32, torch.float16])
@pytest.mark.parametrize('taps, separable, up, down, padding, flip_filter, gain', UPFIRDN2D_CASES)
def test_upfirdn2d_kernel_matches_reference_to_second_order(plugin, taps, separable, up, down, padding, flip_filter, gain, dtype):
    f = upfirdn2d.setup_filter(taps, separable=separable)
    config = upfirdn2d.cuda_config(plugin, up, down, padding, flip_filter, gain)
    for layout in LAYOUTS:
        x = randn(2, 3, 5, 7).to(dtype).contiguous(memory_format=layout).requires_grad_(True)
        ours = _derivatives(lambda x: upfirdn2d_cuda.apply(config, x, f), [x])
        if dtype == torch.float16:
            x = x.detach().float().requires_grad_(True)
        ref = _derivatives(lambda x: upfirdn2d.upfirdn2d_ref(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain), [x])
        assert ours[0].dtype == dtype and ours[0].is_contiguous(memory_format=layout)
        for a, e in zip(ours, ref):
            torch.testing.assert_close(a.double(), e.double(), **TOLERANCE[dtype])


def test_upfirdn2d_kernel_gradcheck_in_float64(plugin):
    x = randn(1, 1, 4, 3, requires_grad=True)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    config = upfirdn2d.cuda_config(plugin, 2, 1, [2, 1, 2, 1], False, 4)
    func = lambda x: upfirdn2d_cuda.apply(config, x, f)
    assert torch.autograd.gradcheck(func, [x])
    assert torch.autograd.gradgradcheck(func, [x])

#----------------------------------------------------------------------------

@pytest.mark.parametrize('dtype', [torch.float64, torch.float16])
@pytest.mark.parametrize('act, alpha, gain', [('lrelu', 0.3, -2.0), ('relu', None, -1.0), ('lrelu', 0.0, 0.7), ('linear', None, -0.5)])
def test_bias_act_kernel_gradient_from_the_output_with_any_gain_sign(plugin, act, alpha, gain, dtype):
    x = (randn(3, 4, 5) * 3).to(dtype).requires_grad_(True)
    b = randn(4, seed=1).to(dtype).requires_grad_(True)
    config = bias_act.cuda_config(plugin, x, b, 1, act, alpha, gain, 2.0)
    assert config.grad_from == 'output'
    ours = _derivatives(lambda x, b: bias_act_cuda.apply(config, x, b), [x, b])
    if dtype == torch.float16:
        x, b = x.detach().float().requires_grad_(True), b.detach().float().requires_grad_(True)
    ref = _derivatives(lambda x, b: bias_act.bias_act_ref(x, b, act=act, alpha=alpha, gain=gain, clamp=2.0), [x, b])
    for a, e in zip(ours, ref):
        torch.testing.assert_close(a.double(), e.double(), **TOLERANCE[dtype])


def test_compiled_kernels_arithmetic_passes_the_first_use_self_checks(plugin):
    # The same checks a GPU runs before first use, here on the host-compiled kernel code.
    bias_act._self_check(plugin, torch.device('cpu'))  # pylint: disable=protected-access
    upfirdn2d._self_check(plugin, torch.device('cpu'))  # pylint: disable=protected-access
