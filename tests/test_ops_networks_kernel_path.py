"""The networks on the ops' kernel path (CPU stand-ins for the kernels): what the CUDA path's backward keeps is
compatible with the networks' in-place ops, and G and D gradients, R1's included, match the reference path."""

import pytest
import torch

from torch_utils import custom_ops
from torch_utils.ops import bias_act, upfirdn2d
from tests import networks_helpers
from tests.ops_helpers import ReferenceBiasActPlugin, ReferenceUpFirDn2dPlugin

#----------------------------------------------------------------------------

@pytest.fixture
def kernel_path_on_cpu(monkeypatch):
    """A switch that sends CPU tensors through the kernel path (stand-in kernels) or the reference."""
    monkeypatch.setattr(custom_ops, '_self_checks', {})
    monkeypatch.setitem(custom_ops._plugins, 'bias_act_plugin', ReferenceBiasActPlugin())  # pylint: disable=protected-access
    monkeypatch.setitem(custom_ops._plugins, 'upfirdn2d_plugin', ReferenceUpFirDn2dPlugin())  # pylint: disable=protected-access

    def use_kernels(on):
        monkeypatch.setattr(bias_act, '_KERNEL_DEVICE_TYPE', 'cpu' if on else 'cuda')
        monkeypatch.setattr(upfirdn2d, '_KERNEL_DEVICE_TYPE', 'cpu' if on else 'cuda')
    return use_kernels


def _gradients_of_one_step(G, D):
    """G and D parameter gradients of a non-saturating loss on fakes plus R1 on reals (a double backward)."""
    z, c = networks_helpers.latents(batch=2)
    real = torch.randn([2, 3, 16, 16], generator=torch.Generator().manual_seed(5)).requires_grad_(True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # The same per-pixel noise in both runs.
        fake = G(z, c)
    loss = torch.nn.functional.softplus(-D(fake, c)).sum()
    real_logits = D(real, c)
    r1_grad, = torch.autograd.grad(real_logits.sum(), [real], create_graph=True)
    loss = loss + r1_grad.square().sum() + torch.nn.functional.softplus(real_logits).sum()
    params = list(G.parameters()) + list(D.parameters())
    return torch.autograd.grad(loss, params, allow_unused=True)


@pytest.mark.parametrize('g_arch, d_arch', [('orig', 'orig'), ('skip', 'skip'), ('resnet', 'resnet'), ('squeeze', 'resnet')])
def test_networks_train_on_the_kernel_path_as_on_the_reference(kernel_path_on_cpu, g_arch, d_arch):
    G = networks_helpers.randomize_trainable_zeros(networks_helpers.tiny_generator(g_arch, conv_clamp=0.5))
    D = networks_helpers.randomize_trainable_zeros(networks_helpers.tiny_discriminator(d_arch, conv_clamp=0.5))
    kernel_path_on_cpu(True)
    plugin = custom_ops._plugins['bias_act_plugin']  # pylint: disable=protected-access
    ours = _gradients_of_one_step(G, D)
    assert 'y' in plugin.sources  # The piecewise-linear layers' backward read their outputs.
    assert custom_ops._plugins['upfirdn2d_plugin'].calls > 0  # pylint: disable=protected-access
    kernel_path_on_cpu(False)
    expected = _gradients_of_one_step(G, D)
    for a, e in zip(ours, expected):
        assert (a is None) == (e is None)
        if a is not None:
            torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-5)
