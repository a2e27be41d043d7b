"""Tiny real networks with GGDR/GLeaD heads for the regulariser tests (16x16 or 32x32, few channels)."""

import torch

from training.networks import Discriminator, Generator

TINY_CHANNELS = dict(channel_base=256, channel_max=32)  # 16 channels at 16x16, 32 below.


def tiny_G(architecture='squeeze', resolution=16, **synthesis_kwargs):
    torch.manual_seed(0)
    kwargs = dict(TINY_CHANNELS, architecture=architecture, **synthesis_kwargs)
    if architecture == 'squeeze':
        kwargs.setdefault('squeeze_ratio', 4)
    return Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=resolution, img_channels=3,
                     mapping_kwargs=dict(num_layers=2), synthesis_kwargs=kwargs)


def tiny_D(resolution=16, decoder_res=8, glead_kwargs=None, architecture='resnet'):
    torch.manual_seed(1)
    return Discriminator(c_dim=0, img_resolution=resolution, img_channels=3, architecture=architecture,
                         decoder_res=decoder_res, glead_kwargs=glead_kwargs, **TINY_CHANNELS)


def batch(G, batch_size=4, seed=0):
    """(real_img, real_c, gen_z, gen_c) for StyleGAN2Loss.accumulate_gradients."""
    generator = torch.Generator().manual_seed(seed)
    real = torch.rand([batch_size, 3, G.img_resolution, G.img_resolution], generator=generator) * 2 - 1
    z = torch.randn([batch_size, G.z_dim], generator=generator)
    return real, torch.zeros([batch_size, 0]), z, torch.zeros([batch_size, 0])
