"""CUDA runs of the networks (skipped without a GPU): fp16 blocks and the fused ops agree with the CPU reference."""

import pytest
import torch

from tests.networks_helpers import latents, randomize_trainable_zeros, tiny_discriminator, tiny_generator


@pytest.mark.gpu
@pytest.mark.parametrize('arch', ['skip', 'squeeze'])
def test_cuda_generator_matches_cpu_in_fp32_and_fp16(arch):
    G = randomize_trainable_zeros(tiny_generator(arch, resolution=32, channel_base=1024, channel_max=64,
                                                 num_fp16_res=2, conv_clamp=256)).eval()
    z, c = latents()
    cpu = G(z, c, noise_mode='const', force_fp32=True)
    G_cuda = G.cuda()
    fp32 = G_cuda(z.cuda(), c.cuda(), noise_mode='const', force_fp32=True).cpu()
    fp16 = G_cuda(z.cuda(), c.cuda(), noise_mode='const').cpu()
    assert torch.allclose(fp32, cpu, atol=1e-3)
    assert fp16.dtype == torch.float32 and (fp16 - cpu).abs().max() < 0.05


@pytest.mark.gpu
def test_cuda_discriminator_backward_in_fp16_is_finite():
    D = tiny_discriminator('resnet', resolution=32, channel_base=1024, channel_max=64, num_fp16_res=2,
                           conv_clamp=256, block_kwargs=dict(fp16_channels_last=True)).cuda()
    img = torch.randn([4, 3, 32, 32], device='cuda', requires_grad=True)
    D(img, None).sum().backward()
    assert torch.isfinite(img.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in D.parameters())
