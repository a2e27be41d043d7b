"""GGDR: D's feature decoder, G's features, the feature augmentation and the cosine loss term."""

import pytest
import torch

from tests import regularizer_helpers as helpers
from training.augment import AugmentPipe, augpipe_specs
from training.loss import StyleGAN2Loss
from training.networks import Discriminator
from training.regularizers import GGDRLoss, cosine_distance

#----------------------------------------------------------------------------
# Decoder and features.

# (resolution, channel_base, decoder_res) -> decoder parameters. At paper256 (channel_base 16384) the layers
# are 512->512 @8, 1024->512 @16, 1024->512 @32 and 1024->256 @64: 1,574,656 weights and biases ("about 1.6M").
DECODER_PARAMS = [
    (32, 16384, 8, 512 * 512 + 512),
    (64, 16384, 16, 512 * 512 + 512 + 1024 * 512 + 512),
    (256, 16384, 64, 1_574_656),
]


@pytest.mark.parametrize('architecture', ['orig', 'skip', 'resnet'])
@pytest.mark.parametrize('resolution, channel_base, decoder_res, expected', DECODER_PARAMS)
def test_decoder_parameter_count_and_output_shape(resolution, channel_base, decoder_res, expected, architecture):
    D = Discriminator(c_dim=0, img_resolution=resolution, img_channels=3, architecture=architecture,
                      channel_base=channel_base, decoder_res=decoder_res)
    assert sum(p.numel() for p in D.decoder.parameters()) == expected
    if resolution <= 64:
        logits, heads = D(torch.zeros([2, 3, resolution, resolution]), None)
        channels = min(channel_base // decoder_res, 512)
        assert logits.shape == (2, 1) and heads['features'].shape == (2, channels, decoder_res, decoder_res)


def test_plain_discriminator_still_returns_only_logits():
    D = helpers.tiny_D(decoder_res=None)
    assert isinstance(D(torch.zeros([2, 3, 16, 16]), None), torch.Tensor)


@pytest.mark.parametrize('architecture', ['orig', 'skip', 'resnet', 'squeeze'])
def test_every_block_type_exposes_the_features_it_hands_to_the_next_block(architecture):
    G = helpers.tiny_G(architecture)
    ws = G.mapping(torch.randn([2, 8]), None)
    captured = {}
    G.synthesis.b16.register_forward_pre_hook(lambda _module, args: captured.update(x=args[0]))
    img, features = G.synthesis(ws, feature_res=8)
    assert features.shape == (2, 32, 8, 8) and features.dtype == torch.float32
    assert torch.equal(features, captured['x'])  # Exactly what b16 received.
    assert torch.equal(img, G.synthesis(ws))


def test_squeeze_features_are_the_blend_output():
    G = helpers.tiny_G('squeeze')
    captured = {}
    G.synthesis.b8.blend.register_forward_hook(lambda _m, _args, out: captured.update(f_o=out))
    _img, features = G.synthesis(G.mapping(torch.randn([2, 8]), None), feature_res=8)
    assert torch.equal(features, captured['f_o'])


def test_feature_resolution_must_be_a_block_below_the_last():
    G = helpers.tiny_G('skip')
    with pytest.raises(ValueError, match=r'feature_res must be one of \[4, 8\]'):
        G.synthesis(G.mapping(torch.randn([1, 8]), None), feature_res=16)

#----------------------------------------------------------------------------
# Augmentation of features.

def test_features_take_the_images_geometry_and_nothing_else():
    # GGDR resamples features with bilinear 2x upsampling (tests/test_reference_parity.py holds ours to its code), so
    # on smooth maps of the image's size they follow the geometrically augmented image closely, not exactly.
    pipe = AugmentPipe(**augpipe_specs['bgc'])
    pipe.p.fill_(1)
    images = torch.nn.functional.interpolate(torch.rand([4, 3, 4, 4]), scale_factor=4, mode='bilinear') * 2 - 1
    torch.manual_seed(3)
    augmented, moved = pipe(images, features=images.clone())
    torch.manual_seed(3)
    geometric_only = AugmentPipe(**augpipe_specs['bg'])
    geometric_only.p.fill_(1)
    expected = geometric_only(images)
    relative = lambda x: float((x - expected).abs().mean() / expected.abs().mean())
    assert relative(moved) < 0.1 and relative(images) > 0.3  # Measured 0.04 and 0.5.
    torch.manual_seed(3)
    assert torch.equal(geometric_only(images, features=images.clone())[1], moved)  # Same draws; no colour on features.
    torch.manual_seed(3)
    assert torch.equal(augmented, pipe(images))  # Passing features changes nothing for the images.


@pytest.mark.parametrize('shape', [(4, 4), (4, 8)], ids=['square', 'non-square'])
def test_features_of_half_the_size_move_with_translations_rescaled(shape):
    # An x-flip and integer translation only: at half size the feature map must match the half-size image
    # moved by the same draws (translations halved, rounded at that size as GGDR does), up to the resampling filter.
    pipe = AugmentPipe(xflip=1, xint=1, xint_max=0.25)
    pipe.p.fill_(1)
    images = torch.nn.functional.interpolate(torch.rand([4, 3, *shape]), scale_factor=8, mode='bilinear')
    half = torch.nn.functional.avg_pool2d(images, 2)
    torch.manual_seed(5)
    augmented, moved = pipe(images, features=half)
    assert moved.shape == half.shape
    expected = torch.nn.functional.avg_pool2d(augmented, 2)
    assert (moved - expected).abs().mean() < 0.15 * expected.abs().mean()  # Measured 0.07-0.10 over five draws.
    assert (moved - half).abs().mean() > 0.1 * half.abs().mean()  # It did move.


def test_pipe_refuses_features_of_another_batch_size():
    with pytest.raises(ValueError, match='features must be maps'):
        AugmentPipe(xflip=1)(torch.zeros([2, 3, 8, 8]), features=torch.zeros([3, 5, 4, 4]))

#----------------------------------------------------------------------------
# The loss term.

def test_cosine_distance_is_zero_for_parallel_and_two_for_opposite_features():
    x = torch.randn([2, 5, 4, 4])
    assert torch.allclose(cosine_distance(x, 3 * x), torch.zeros(2), atol=1e-6)
    assert torch.allclose(cosine_distance(x, -x), torch.full([2], 2.0), atol=1e-6)


def _ggdr_loss(weight=10):
    G, D = helpers.tiny_G('squeeze'), helpers.tiny_D(decoder_res=8)
    pipe = AugmentPipe(**augpipe_specs['bgc'])
    pipe.p.fill_(0.5)
    return G, D, StyleGAN2Loss('cpu', G, D, augment_pipe=pipe, pl_weight=0,
                               extra_terms=[dict(class_name='training.regularizers.GGDRLoss', resolution=8, weight=weight)])


def test_ggdr_gradient_reaches_the_decoder_and_not_the_generator():
    G, D, loss = _ggdr_loss()
    D.requires_grad_(True)
    loss.accumulate_gradients('Dmain', *helpers.batch(G), gain=1, cur_nimg=0)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in D.decoder.parameters())
    assert all(p.grad is None for p in G.parameters())


def test_ggdr_term_is_reported_and_weighted(monkeypatch):
    """The reported term is weight x the cosine distance of the same pass: ten times larger at weight 10 than at 1."""
    from torch_utils import training_stats
    seen = {}

    def report(name, value):
        seen[name] = value
        return value
    monkeypatch.setattr(training_stats, 'report', report)
    reported = {}
    for weight in (1, 10):
        G, D, loss = _ggdr_loss(weight=weight)
        torch.manual_seed(0)
        loss.accumulate_gradients('Dmain', *helpers.batch(G), gain=1, cur_nimg=0)
        reported[weight] = seen['Loss/D/ggdr'].detach()
    assert reported[1].shape == (4,) and bool(((reported[1] > 0) & (reported[1] <= 2)).all())
    assert torch.allclose(reported[10], reported[1] * 10, rtol=1e-5, atol=0)


def test_ggdr_without_a_decoder_names_what_is_missing():
    G = helpers.tiny_G('skip')
    loss = StyleGAN2Loss('cpu', G, helpers.tiny_D(decoder_res=None), extra_terms=[GGDRLoss(resolution=8, weight=10)])
    with pytest.raises(ValueError, match=r'GGDR needs a discriminator with the feature decoder'):
        loss.accumulate_gradients('Dmain', *helpers.batch(G), gain=1, cur_nimg=0)
