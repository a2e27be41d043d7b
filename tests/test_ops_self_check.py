"""The compiled ops' self-check at first use on a device, with stand-in kernels on the CPU: a wrong kernel is
disabled after one warning naming the op and the error, and the reference runs instead."""

import warnings

import pytest
import torch

from torch_utils import custom_ops
from torch_utils.ops import bias_act, upfirdn2d
from tests.ops_helpers import ReferenceBiasActPlugin, ReferenceUpFirDn2dPlugin, randn

#----------------------------------------------------------------------------

class WrongBiasActPlugin(ReferenceBiasActPlugin):
    """A broken bias_act kernel: results of `order` in `dtype` (any dtype when None) come out 1% too large."""

    def __init__(self, order, dtype=None):
        super().__init__()
        self.wrong_order, self.wrong_dtype = order, dtype

    def bias_act(self, x, b, y, dy, dim, act, order, alpha, gain, clamp):  # pylint: disable=arguments-differ
        out = super().bias_act(x, b, y, dy, dim, act, order, alpha, gain, clamp)
        return out * 1.01 if order == self.wrong_order and self.wrong_dtype in (None, out.dtype) else out


class WrongUpFirDn2dPlugin(ReferenceUpFirDn2dPlugin):
    """A broken upfirdn2d kernel: it ignores the padding's trailing crop/pad on the x axis."""

    def upfirdn2d(self, x, w, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1):  # pylint: disable=arguments-differ
        return super().upfirdn2d(x, w, up_x, up_y, down_x, down_y, pad_x0, pad_x0, pad_y0, pad_y1)


class FailingPlugin:
    """A kernel that cannot run on this device at all."""

    def bias_act(self, *args):
        raise RuntimeError('CUDA error: no kernel image is available for execution on the device\nmore details')

    upfirdn2d = bias_act


@pytest.fixture
def kernel_on_cpu(monkeypatch):
    """Send the ops' CPU tensors down the kernel path, to a stand-in plugin; self-checks start afresh."""
    monkeypatch.setattr(custom_ops, '_self_checks', {})
    monkeypatch.setattr(bias_act, '_KERNEL_DEVICE_TYPE', 'cpu')
    monkeypatch.setattr(upfirdn2d, '_KERNEL_DEVICE_TYPE', 'cpu')

    def install(module_name, plugin):
        monkeypatch.setitem(custom_ops._plugins, module_name, plugin)  # pylint: disable=protected-access
        return plugin
    return install


def _run_bias_act():
    x, b = randn(2, 3, 4, 4, dtype=torch.float32), randn(3, seed=1, dtype=torch.float32)
    return bias_act.bias_act(x, b, act='lrelu', clamp=1.0), bias_act.bias_act_ref(x, b, act='lrelu', clamp=1.0)


def _run_upsample2d():
    x, f = randn(1, 2, 4, 4, dtype=torch.float32), upfirdn2d.setup_filter([1, 3, 3, 1])
    return upfirdn2d.upsample2d(x, f), upfirdn2d.upsample2d(x, f, impl='ref')

#----------------------------------------------------------------------------

@pytest.mark.parametrize('order, dtype, message', [
    (0, None, r'lrelu output in float32'),
    (1, None, r'lrelu dx in float32'),
    (2, None, r'swish second-order dx in float32'),
    (0, torch.float16, r'lrelu output in float16'),
])
def test_wrong_bias_act_kernel_is_disabled_after_one_warning(kernel_on_cpu, order, dtype, message):
    plugin = kernel_on_cpu('bias_act_plugin', WrongBiasActPlugin(order, dtype))
    pattern = rf'"bias_act_plugin" failed its self-check on cpu \({message}.*max \|difference\|.*reference implementation'
    with pytest.warns(custom_ops.PluginSelfCheckWarning, match=pattern) as record:
        ours, expected = _run_bias_act()
    assert len(record) == 1
    torch.testing.assert_close(ours, expected)
    calls = len(plugin.orders)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        ours, expected = _run_bias_act()
    torch.testing.assert_close(ours, expected)
    assert len(plugin.orders) == calls  # The reference ran; the kernel is not called again.


def test_wrong_upfirdn2d_kernel_is_disabled_after_one_warning(kernel_on_cpu):
    plugin = kernel_on_cpu('upfirdn2d_plugin', WrongUpFirDn2dPlugin())
    with pytest.warns(custom_ops.PluginSelfCheckWarning, match=r'"upfirdn2d_plugin" failed its self-check on cpu \(output in float32') as record:
        ours, expected = _run_upsample2d()
    assert len(record) == 1
    torch.testing.assert_close(ours, expected)
    calls = plugin.calls
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        _run_upsample2d()
    assert plugin.calls == calls


@pytest.mark.parametrize('module_name, run', [('bias_act_plugin', _run_bias_act), ('upfirdn2d_plugin', _run_upsample2d)])
def test_kernel_that_raises_is_disabled_with_the_error_named(kernel_on_cpu, module_name, run):
    kernel_on_cpu(module_name, FailingPlugin())
    with pytest.warns(custom_ops.PluginSelfCheckWarning, match=rf'"{module_name}" failed its self-check on cpu '
                                                              r'\(RuntimeError: CUDA error: no kernel image is available .*\)') as record:
        ours, expected = run()
    assert len(record) == 1
    torch.testing.assert_close(ours, expected)


def test_correct_kernels_pass_and_are_used_without_a_warning(kernel_on_cpu):
    bias_plugin = kernel_on_cpu('bias_act_plugin', ReferenceBiasActPlugin())
    filter_plugin = kernel_on_cpu('upfirdn2d_plugin', ReferenceUpFirDn2dPlugin())
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        ours, expected = _run_bias_act()
        torch.testing.assert_close(ours, expected)
        checked_calls = len(bias_plugin.orders)
        ours, expected = _run_bias_act()
        torch.testing.assert_close(ours, expected)
        assert len(bias_plugin.orders) == checked_calls + 1  # The op itself; the check ran once.
        ours, expected = _run_upsample2d()
        torch.testing.assert_close(ours, expected)
    assert filter_plugin.calls > 0


def test_self_check_runs_again_for_a_new_build(kernel_on_cpu):
    kernel_on_cpu('bias_act_plugin', WrongBiasActPlugin(0))
    with pytest.warns(custom_ops.PluginSelfCheckWarning):
        _run_bias_act()
    plugin = kernel_on_cpu('bias_act_plugin', ReferenceBiasActPlugin())
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        _run_bias_act()
    assert plugin.orders


def test_self_check_works_inside_no_grad_and_inference_mode(kernel_on_cpu):
    plugin = kernel_on_cpu('bias_act_plugin', ReferenceBiasActPlugin())
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter('error')
        ours, expected = _run_bias_act()
    torch.testing.assert_close(ours, expected)
    assert 2 in plugin.orders  # The check differentiated twice even so.


def test_self_check_warning_is_a_plugin_unavailable_warning():
    # Filters written for "cannot be built" warnings also cover a kernel that fails its check.
    assert issubclass(custom_ops.PluginSelfCheckWarning, custom_ops.PluginUnavailableWarning)

#----------------------------------------------------------------------------
# SQUEEZEGAN_OPS: auto (reference after one warning), cuda (an error instead), ref (never a kernel).

def test_ops_mode_is_auto_by_default_and_refuses_other_values(monkeypatch):
    monkeypatch.delenv(custom_ops.OPS_ENV, raising=False)
    assert custom_ops.ops_mode() == 'auto'
    assert custom_ops.ops_mode({custom_ops.OPS_ENV: ' CUDA '}) == 'cuda'
    with pytest.raises(custom_ops.OpsModeError, match=r'^SQUEEZEGAN_OPS=kernel: accepted values are auto, cuda, ref$'):
        custom_ops.ops_mode({custom_ops.OPS_ENV: 'kernel'})


@pytest.mark.parametrize('module_name, run', [('bias_act_plugin', _run_bias_act), ('upfirdn2d_plugin', _run_upsample2d)])
def test_cuda_mode_turns_a_failed_self_check_into_an_error_naming_the_op(kernel_on_cpu, monkeypatch, module_name, run):
    monkeypatch.setenv(custom_ops.OPS_ENV, 'cuda')
    kernel_on_cpu(module_name, FailingPlugin())
    pattern = rf'^SQUEEZEGAN_OPS=cuda: custom op "{module_name}" failed its self-check on cpu \(RuntimeError: CUDA error'
    for _ in range(2):  # Every later call too: never a silent fallback.
        with pytest.raises(custom_ops.KernelUnavailableError, match=pattern):
            run()


def test_cuda_mode_turns_a_failed_build_into_an_error_naming_the_op(kernel_on_cpu, monkeypatch):
    monkeypatch.setenv(custom_ops.OPS_ENV, 'cuda')
    kernel_on_cpu('bias_act_plugin', None)
    monkeypatch.setitem(custom_ops._problems, 'bias_act_plugin', 'failed to build (nvcc fatal: bad flag)')  # pylint: disable=protected-access
    with pytest.raises(custom_ops.KernelUnavailableError,
                       match=r'^SQUEEZEGAN_OPS=cuda: custom op "bias_act_plugin" failed to build \(nvcc fatal: bad flag\)$'):
        _run_bias_act()


def test_auto_mode_warns_once_naming_the_op_and_the_switches(kernel_on_cpu, monkeypatch):
    monkeypatch.delenv(custom_ops.OPS_ENV, raising=False)
    kernel_on_cpu('upfirdn2d_plugin', FailingPlugin())
    with pytest.warns(custom_ops.PluginSelfCheckWarning, match=r'"upfirdn2d_plugin" failed its self-check on cpu .*'
                                                              r'SQUEEZEGAN_OPS=cuda makes this an error') as record:
        _run_upsample2d()
        _run_upsample2d()
    assert len(record) == 1


def test_ref_mode_never_calls_a_kernel(kernel_on_cpu, monkeypatch):
    monkeypatch.setenv(custom_ops.OPS_ENV, 'ref')
    bias_plugin = kernel_on_cpu('bias_act_plugin', ReferenceBiasActPlugin())
    filter_plugin = kernel_on_cpu('upfirdn2d_plugin', ReferenceUpFirDn2dPlugin())
    _run_bias_act()
    _run_upsample2d()
    assert bias_plugin.orders == [] and filter_plugin.calls == 0


def test_op_paths_name_what_each_op_runs_and_why(kernel_on_cpu, monkeypatch):
    from torch_utils.ops import paths  # pylint: disable=import-outside-toplevel
    monkeypatch.delenv(custom_ops.OPS_ENV, raising=False)
    kernel_on_cpu('bias_act_plugin', ReferenceBiasActPlugin())
    kernel_on_cpu('upfirdn2d_plugin', WrongUpFirDn2dPlugin())
    with pytest.warns(custom_ops.PluginSelfCheckWarning):
        found = paths.op_paths('cpu')
    assert found['bias_act'] == 'CUDA kernel'
    assert found['upfirdn2d'].startswith('reference (the kernel failed its self-check on cpu (output in float32')
    monkeypatch.setenv(custom_ops.OPS_ENV, 'ref')
    assert paths.describe('cpu') == ('Ops on cpu (SQUEEZEGAN_OPS=ref): bias_act: reference (SQUEEZEGAN_OPS=ref); '
                                     'upfirdn2d: reference (SQUEEZEGAN_OPS=ref)')


def test_cuda_mode_on_a_run_without_cuda_stops_at_start(monkeypatch):
    from torch_utils.ops import paths  # pylint: disable=import-outside-toplevel
    monkeypatch.setenv(custom_ops.OPS_ENV, 'cuda')
    with pytest.raises(custom_ops.KernelUnavailableError, match=r'^SQUEEZEGAN_OPS=cuda: this run has no CUDA device'):
        paths.op_paths('cpu')
    paths.check_mode_fits('cuda')
