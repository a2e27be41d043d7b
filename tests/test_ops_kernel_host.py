"""The real bindings and kernels, built for the CPU with PyTorch's own flags, against the references (no GPU needed).

The .cu files keep their per-element code in __host__ __device__ functions; built with SQUEEZEGAN_HOST_KERNELS
their launch functions loop over it on the host, and the .cpp bindings (their checks, layouts and output
allocation) are compiled as written (ops_helpers.build_host_bindings). The CUDA autograd path is checked end to
end here: forward, first and second order, fp64/fp32/fp16, contiguous and channels_last, and the bindings'
argument checks.
"""

import shutil

import pytest
import torch

from torch_utils.ops import bias_act, bias_act_cuda, upfirdn2d, upfirdn2d_cuda
from tests.ops_helpers import BIAS_ACT_CASES, UPFIRDN2D_CASES, build_host_bindings, randn
from tests import limits

pytestmark = pytest.mark.skipif(shutil.which('nvcc') is None, reason='nvcc is not installed')

TOLERANCE = {  # float64: the filter taps are float32 in both paths, scaled in a different order.
    torch.float64: dict(rtol=1e-6, atol=1e-6),
    torch.float32: dict(rtol=1e-5, atol=1e-5),
    torch.float16: dict(rtol=1e-2, atol=1e-2),
}
LAYOUTS = [torch.contiguous_format, torch.channels_last]


@pytest.fixture(scope='module')
def plugin():
    return build_host_bindings()  # About a minute on 2 cores the first time; cached by a digest of the sources.


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

#----------------------------------------------------------------------------

def test_self_checks_pass_the_real_kernel_arithmetic_for_any_seed(plugin):
    # The first-use self-check must never disable a correct kernel by chance: float16 rounding near a kink
    # (relu's 0, the clamp) used to fail about 1 draw in 80 (seeds 230, 294, 320, ... of these 300).
    for seed in range(300):
        bias_act._self_check(plugin, torch.device('cpu'), seed=seed)  # pylint: disable=protected-access
        if seed % 10 == 0:
            upfirdn2d._self_check(plugin, torch.device('cpu'), seed=seed)  # pylint: disable=protected-access

#----------------------------------------------------------------------------
# The bindings' own argument checks, as a GPU build runs them (TORCH_CHECK: RuntimeError with the message).

_EMPTY = torch.empty([0])


def _bias_act_call(plugin, x=None, b=None, y=_EMPTY, dy=_EMPTY, dim=1, act=3, order=0):
    x = randn(2, 3, 4, dtype=torch.float32) if x is None else x
    b = randn(3, seed=1, dtype=torch.float32) if b is None else b
    return plugin.bias_act(x, b, y, dy, dim, act, order, 0.2, 1.0, -1.0)


@pytest.mark.parametrize('changes, message', [
    (dict(x=randn(2, 3, 4).to(torch.bfloat16)), 'bias_act: x must be float16, float32 or float64'),
    (dict(order=3), 'bias_act: order must be 0, 1 or 2, got 3'),
    (dict(b=randn(4, dtype=torch.float32)), r'bias_act: b must have shape \[3\]'),
    (dict(b=randn(3, dtype=torch.float64)), 'bias_act: b must match x in device and dtype'),
    (dict(dim=3), 'bias_act: dim 3 is out of range for 3-D x'),
    (dict(order=1, dy=randn(2, 3, 5, dtype=torch.float32)), 'bias_act: dy must have the shape of x'),
    (dict(order=1, act=4, y=randn(2, 3, 4, dtype=torch.float32), b=_EMPTY),
     'bias_act: y replaces x and b only for order 1 of linear, relu and lrelu'),
])
def test_bias_act_binding_refuses_bad_arguments_with_its_message(plugin, changes, message):
    with pytest.raises(RuntimeError, match=message):
        _bias_act_call(plugin, **changes)


def test_bias_act_binding_makes_a_strided_input_dense_and_keeps_channels_last(plugin):
    x = randn(2, 3, 4, 8, dtype=torch.float32)[..., ::2]  # Neither contiguous nor channels_last.
    b = randn(3, seed=1, dtype=torch.float32)
    torch.testing.assert_close(_bias_act_call(plugin, x=x, b=b), bias_act.bias_act_ref(x, b, act='lrelu', gain=1.0))
    x = x.contiguous(memory_format=torch.channels_last)
    assert _bias_act_call(plugin, x=x, b=b).is_contiguous(memory_format=torch.channels_last)


def _upfirdn2d_call(plugin, x=None, w=None, up=(1, 1), down=(1, 1), pad=(1, 1, 1, 1)):
    x = randn(1, 2, 5, 5, dtype=torch.float32) if x is None else x
    w = torch.ones([3, 3]) / 9 if w is None else w
    return plugin.upfirdn2d(x, w, *up, *down, *pad)


@pytest.mark.parametrize('changes, message', [
    (dict(x=randn(2, 5, 5, dtype=torch.float32)), 'upfirdn2d: x must be a 4-D CPU tensor'),
    (dict(w=torch.ones([3, 3], dtype=torch.float64)), 'upfirdn2d: w must be a 2-D float32 CPU tensor'),
    (dict(w=torch.ones([9])), 'upfirdn2d: w must be a 2-D float32 CPU tensor'),
    (dict(up=(0, 1)), 'upfirdn2d: up and down must be >= 1'),
    (dict(pad=(-3, -3, 0, 0)), 'upfirdn2d: the padding and filter leave an empty output'),
    (dict(x=randn(1, 2, 5, 5).to(torch.bfloat16)), 'upfirdn2d: x must be float16, float32 or float64'),
])
def test_upfirdn2d_binding_refuses_bad_arguments_with_its_message(plugin, changes, message):
    with pytest.raises(RuntimeError, match=message):
        _upfirdn2d_call(plugin, **changes)


def test_a_build_killed_halfway_does_not_block_the_next_one(plugin):
    # torch's lock file, as a build killed mid-way leaves it: every later load used to wait for it for ever.
    import os  # pylint: disable=import-outside-toplevel
    import subprocess  # pylint: disable=import-outside-toplevel
    import sys  # pylint: disable=import-outside-toplevel
    from tests.ops_helpers import host_build_dir  # pylint: disable=import-outside-toplevel
    for name in ('bias_act', 'upfirdn2d'):
        with open(os.path.join(host_build_dir(), name, 'lock'), 'w', encoding='utf-8'):
            pass
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, '-c', 'from tests.ops_helpers import build_host_bindings; build_host_bindings()'],
                            cwd=repo, capture_output=True, text=True, timeout=limits.seconds(300), check=False)
    assert result.returncode == 0, result.stderr[-2000:]
