"""Discriminator behaviour at 16x16: architectures, projection conditioning, minibatch stddev, fp16, Freeze-D, grads."""

import pytest
import torch

from tests.networks_helpers import DISCRIMINATOR_ARCHS, randomize_trainable_zeros, tiny_discriminator
from training.networks import MinibatchStdLayer


def _images(batch=4, seed=2):
    return torch.randn([batch, 3, 16, 16], generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('arch', DISCRIMINATOR_ARCHS)
def test_discriminator_gives_one_float32_logit_per_image(arch):
    D = tiny_discriminator(arch)
    logits = D(_images(), torch.zeros([4, 0]))
    assert logits.shape == (4, 1) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize('arch', DISCRIMINATOR_ARCHS)
def test_gradient_reaches_every_discriminator_parameter(arch):
    D = randomize_trainable_zeros(tiny_discriminator(arch, c_dim=3))
    c = torch.eye(3)[[0, 1, 2, 0]]
    D(_images(), c).square().sum().backward()
    missing = [name for name, p in D.named_parameters() if p.grad is None or p.grad.abs().max() == 0]
    assert missing == []


def test_projection_conditioning_is_inner_product_with_mapped_label():
    D = tiny_discriminator('resnet', c_dim=3).eval()
    img, c = _images(batch=2), torch.eye(3)[[0, 2]]
    features = {}
    D.b4.out.register_forward_hook(lambda m, i, o: features.__setitem__('out', o))
    logits = D(img, c)
    cmap = D.mapping(None, c)
    assert cmap.shape == (2, D.b4.cmap_dim) and D.b4.cmap_dim == 32  # Default: channels at 4x4.
    expected = (features['out'] * cmap).sum(dim=1, keepdim=True) / cmap.shape[1] ** 0.5
    assert torch.allclose(logits, expected, atol=1e-6)
    assert not torch.allclose(D(img, torch.eye(3)[[1, 1]]), logits)


def test_minibatch_stddev_appends_group_stddev_channel():
    x = torch.randn([4, 6, 2, 2])
    y = MinibatchStdLayer(group_size=2, num_channels=1)(x)
    assert y.shape == (4, 7, 2, 2)
    # Groups are samples {0, 2} and {1, 3} (the minibatch is split as [group, n/group]).
    for members in ([0, 2], [1, 3]):
        expected = (x[members].var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        for i in members:
            assert torch.allclose(y[i, 6], expected.expand(2, 2), atol=1e-6)
    assert torch.equal(y[:, :6], x)


def test_minibatch_stddev_can_be_disabled():
    D = tiny_discriminator('resnet', epilogue_kwargs=dict(mbstd_num_channels=0))
    assert D.b4.mbstd is None and D.b4.conv.weight.shape[1] == 32
    assert D(_images(batch=3), None).shape == (3, 1)


def test_fp16_blocks_run_in_half_unless_force_fp32():
    D = tiny_discriminator('resnet', num_fp16_res=2, conv_clamp=256)
    dtypes = {}
    for res in D.block_resolutions:
        getattr(D, f'b{res}').register_forward_hook(lambda m, i, o, r=res: dtypes.__setitem__(r, o[0].dtype))
    half = D(_images(), None)
    assert dtypes == {16: torch.float16, 8: torch.float16}
    full = D(_images(), None, force_fp32=True)
    assert set(dtypes.values()) == {torch.float32}
    assert half.dtype == full.dtype == torch.float32
    assert (half - full).abs().max() < 6e-4  # Measured 2.1e-4 (logits up to 0.28), CPU, 2026-12-03: 3x margin.


def test_freeze_layers_turns_first_layers_into_buffers():
    D = tiny_discriminator('resnet', block_kwargs=dict(freeze_layers=2))
    params = dict(D.named_parameters())
    buffers = dict(D.named_buffers())
    assert 'b16.fromrgb.weight' in buffers and 'b16.conv0.weight' in buffers
    assert 'b16.conv1.weight' in params and 'b8.conv0.weight' in params


def test_discriminator_rejects_unknown_architecture_with_accepted_values():
    with pytest.raises(ValueError, match='orig, skip, resnet'):
        tiny_discriminator('squeeze')
