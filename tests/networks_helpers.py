"""Tiny generators and discriminators for the networks tests (8-16 px, at most 32 channels)."""

import torch

from training import networks

Z_DIM = 16
W_DIM = 16
SYNTHESIS_ARCHS = ('orig', 'skip', 'resnet', 'squeeze')
DISCRIMINATOR_ARCHS = ('orig', 'skip', 'resnet')


def tiny_generator(architecture='skip', c_dim=0, resolution=16, seed=0, **synthesis_kwargs):
    """A small Generator built deterministically from `seed`."""
    synthesis_kwargs = dict(dict(channel_base=256, channel_max=32, architecture=architecture), **synthesis_kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return networks.Generator(z_dim=Z_DIM, c_dim=c_dim, w_dim=W_DIM, img_resolution=resolution, img_channels=3,
                                  mapping_kwargs=dict(num_layers=2), synthesis_kwargs=synthesis_kwargs)


def tiny_discriminator(architecture='resnet', c_dim=0, resolution=16, seed=0, **kwargs):
    """A small Discriminator built deterministically from `seed`."""
    kwargs = dict(dict(channel_base=256, channel_max=32, epilogue_kwargs=dict(mbstd_group_size=2)), **kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return networks.Discriminator(c_dim=c_dim, img_resolution=resolution, img_channels=3,
                                      architecture=architecture, **kwargs)


def latents(batch=2, c_dim=0, seed=1):
    """(z, c) for a batch; c is one-hot when c_dim > 0, otherwise an empty [batch, 0] tensor."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn([batch, Z_DIM], generator=generator)
    c = torch.zeros([batch, c_dim])
    if c_dim:
        c[torch.arange(batch), torch.arange(batch) % c_dim] = 1
    return z, c


def randomize_trainable_zeros(module, seed=3):
    """Give zero-initialised parameters (noise strengths, biases) random values, so tests see their effect."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            if param.abs().max() == 0:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.1)
    return module
