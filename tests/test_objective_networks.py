"""StyleGAN2Loss with AugmentPipe on the real (tiny) networks: every phase trains, second order goes through."""

import pytest
import torch

from training import networks
from training.augment import AugmentPipe, augpipe_specs
from training.loss import StyleGAN2Loss
from tests import objective_helpers as helpers


def _tiny_nets(c_dim=0, resolution=8):
    torch.manual_seed(0)
    G = networks.Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=resolution, img_channels=3,
                           mapping_kwargs=dict(num_layers=2),
                           synthesis_kwargs=dict(channel_base=256, channel_max=16, architecture='skip'))
    D = networks.Discriminator(c_dim=c_dim, img_resolution=resolution, img_channels=3, architecture='resnet',
                               channel_base=256, channel_max=16, epilogue_kwargs=dict(mbstd_group_size=2))
    return G, D


def _data(G, batch_size=4):
    gen = torch.Generator().manual_seed(1)
    real = torch.rand([batch_size, 3, G.img_resolution, G.img_resolution], generator=gen) * 2 - 1
    z = torch.randn([batch_size, G.z_dim], generator=gen)
    c = torch.zeros([batch_size, G.c_dim])
    if G.c_dim:
        c[:, 0] = 1
    return real, c, z, c


@pytest.mark.slow
@pytest.mark.parametrize('c_dim', [3])  # Conditional: also covers the label embedding path.
def test_all_phases_train_real_networks_through_augmentation(c_dim):
    G, D = _tiny_nets(c_dim=c_dim)
    pipe = AugmentPipe(**augpipe_specs['bgc'])
    pipe.p.fill_(0.5)
    loss = StyleGAN2Loss('cpu', G, D, augment_pipe=pipe)
    w_avg_before = G.mapping.w_avg.clone()

    def run():
        for phase, module in [('Gmain', G), ('Greg', G), ('Dmain', D), ('Dreg', D)]:
            G.requires_grad_(module is G)
            D.requires_grad_(module is D)
            loss.accumulate_gradients(phase, *_data(G), gain=1, cur_nimg=0)
    stats = helpers.collect(run)

    for module in (G, D):
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0
    for name in ['Loss/G/loss', 'Loss/D/loss', 'Loss/r1_penalty', 'Loss/pl_penalty', 'Loss/signs/real']:
        assert stats.num(name) > 0, name
    assert stats.mean('Loss/r1_penalty') > 0 and stats.mean('Loss/pl_penalty') >= 0
    assert float(loss.pl_mean) > 0
    assert not torch.equal(G.mapping.w_avg, w_avg_before)  # stylegan2-ada networks track w_avg in training.
