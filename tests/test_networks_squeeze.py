"""The image squeeze connection: block structure, ablations, ws bookkeeping, and the paper's Eq. 7 identity."""

import pytest
import torch

from tests.networks_helpers import latents, randomize_trainable_zeros, tiny_generator
from torch_utils.ops import upfirdn2d


def test_squeeze_block_layers_have_paper_widths():
    G = tiny_generator('squeeze', resolution=16, channel_base=512, channel_max=32, squeeze_ratio=4)
    block = G.synthesis.b8  # c = 32 at 8x8, r = 4.
    assert tuple(block.conv0.weight.shape) == (32, 32, 3, 3)      # f_i: 3x3, upsampling.
    assert block.conv0.up == 2
    assert tuple(block.squeeze.weight.shape) == (8, 32, 3, 3)     # f_s: c / r channels.
    assert tuple(block.excite.weight.shape) == (32, 8, 3, 3)      # f_e: back to c.
    assert tuple(block.blend.weight.shape) == (32, 64, 1, 1)      # f_o: 1x1 on cat(f_i, f_e).
    assert tuple(block.torgb.weight.shape) == (3, 8, 1, 1)        # ToRGB reads f_s.


def test_first_block_is_stylegan2_4x4_block():
    squeeze, skip = tiny_generator('squeeze'), tiny_generator('skip')
    names = lambda block: sorted(n for n, _ in block.named_parameters())
    assert names(squeeze.synthesis.b4) == names(skip.synthesis.b4) == sorted(
        ['const', 'conv1.affine.weight', 'conv1.affine.bias', 'conv1.weight', 'conv1.noise_strength', 'conv1.bias',
         'torgb.affine.weight', 'torgb.affine.bias', 'torgb.weight', 'torgb.bias'])


@pytest.mark.parametrize('ablation, last_block_convs', [
    ('none', ['conv0', 'squeeze']),
    ('no_blend', ['conv0', 'squeeze']),
    ('torgb_before_squeeze', ['conv0']),
    ('torgb_after_excitation', ['conv0', 'squeeze', 'excite']),
])
def test_last_block_ends_at_the_torgb_input(ablation, last_block_convs):
    G = tiny_generator('squeeze', squeeze_ablation=ablation)
    assert list(G.synthesis.b16.stages) == last_block_convs
    assert G.synthesis.b16.num_conv_ws == len(last_block_convs)


@pytest.mark.parametrize('ablation, torgb_channels, has_blend', [
    ('none', 4, True),                      # c = 32 at 8x8, r = 8: ToRGB reads f_s.
    ('no_blend', 4, False),                 # Fig. 6(a).
    ('torgb_before_squeeze', 32, True),     # Fig. 6(b): reads f_i.
    ('torgb_after_excitation', 32, True),   # Fig. 6(c): reads f_e.
])
def test_ablations_move_torgb_and_drop_blend(ablation, torgb_channels, has_blend):
    G = tiny_generator('squeeze', squeeze_ablation=ablation)
    block = G.synthesis.b8
    assert block.torgb.weight.shape[1] == torgb_channels
    assert hasattr(block, 'blend') == has_blend
    assert G(*latents()).shape == (2, 3, 16, 16)


def test_num_ws_counts_one_w_per_conv_plus_final_torgb():
    G = tiny_generator('squeeze', resolution=32, channel_base=512)
    # b4: conv1; b8, b16: conv0 squeeze excite blend; b32 (last): conv0 squeeze; + the last ToRGB.
    assert G.num_ws == G.synthesis.num_ws == G.mapping.num_ws == 1 + 4 + 4 + 2 + 1
    assert tiny_generator('squeeze', squeeze_ablation='no_blend').num_ws == 1 + 3 + 2 + 1


def test_each_squeeze_conv_uses_its_own_w():
    G = tiny_generator('squeeze').eval()
    ws = G.mapping(*latents())
    base = G.synthesis(ws, noise_mode='const')
    for idx in range(G.num_ws):
        mixed = ws.clone()
        mixed[:, idx] += 1
        assert not torch.allclose(G.synthesis(mixed, noise_mode='const'), base), f'w {idx} is unused'


def test_squeeze_generator_has_fewer_params_than_skip():
    count = lambda G: sum(p.numel() for p in G.parameters())
    skip = tiny_generator('skip', resolution=32, channel_base=1024, channel_max=64)
    squeeze = tiny_generator('squeeze', resolution=32, channel_base=1024, channel_max=64)
    assert count(squeeze) < count(skip)


@pytest.mark.parametrize('bad, message', [
    (dict(squeeze_ablation='blend'), 'squeeze_ablation must be one of none, no_blend'),
    (dict(squeeze_ratio=0.5), 'squeeze_ratio must be a number >= 1'),
])
def test_bad_squeeze_settings_are_rejected_with_accepted_values(bad, message):
    with pytest.raises(ValueError, match=message):
        tiny_generator('squeeze', **bad)


#----------------------------------------------------------------------------
# Eq. 7: summing per-resolution ToRGB outputs = one 1x1 projection of the concatenated, upsampled,
# modulated features.

def _projection_of_concatenated_features(G, ws):
    """Record every ToRGB's input and w, and rebuild the image as W_a^T f'_a (Eq. 7)."""
    records = []
    hooks = [m.register_forward_hook(lambda m, args, out: records.append((m, args[0], args[1])))
             for name, m in G.synthesis.named_modules() if name.endswith('torgb')]
    img = G.synthesis(ws, noise_mode='const', fused_modconv=False)
    for hook in hooks:
        hook.remove()
    filt = G.synthesis.b8.resample_filter
    features, weights = [], []
    for torgb, x, w in records:
        modulated = x * (torgb.affine(w) * torgb.weight_gain)[:, :, None, None]  # f'_j (Eq. 5).
        while modulated.shape[-1] < G.img_resolution:
            modulated = upfirdn2d.upsample2d(modulated, filt)                   # Up(f'_j).
        features.append(modulated)
        weights.append(torgb.weight[:, :, 0, 0])
    f_a = torch.cat(features, dim=1)
    W_a = torch.cat(weights, dim=1)
    return img, torch.einsum('oc,nchw->nohw', W_a, f_a), f_a.shape[1]


@pytest.mark.parametrize('arch, concat_channels', [('skip', 32 + 32 + 16), ('squeeze', 32 + 4 + 2)])
def test_eq7_summed_torgb_outputs_equal_one_projection_of_concatenated_features(arch, concat_channels):
    G = randomize_trainable_zeros(tiny_generator(arch))
    with torch.no_grad():
        for name, param in G.named_parameters():
            if name.endswith('torgb.bias'):
                param.zero_()
    ws = G.mapping(*latents())
    img, projection, channels = _projection_of_concatenated_features(G, ws)
    assert channels == concat_channels
    assert torch.allclose(img, projection, atol=1e-5)
    assert img.abs().max() > 1e-2  # Not trivially zero.


def test_squeeze_arguments_with_another_architecture_name_their_architecture():
    with pytest.raises(ValueError, match="squeeze_ratio applies only to architecture='squeeze'"):
        tiny_generator('skip', squeeze_ratio=4)


def test_squeeze_generator_shares_mapping_4x4_block_and_conv0_with_skip_generator():
    # What transfer learning from a skip G (training/transfer.py) can copy by name and shape.
    shapes = lambda G: {n: tuple(t.shape) for n, t in list(G.named_parameters()) + list(G.named_buffers())}
    skip, squeeze = shapes(tiny_generator('skip')), shapes(tiny_generator('squeeze'))
    shared = {n for n in skip if squeeze.get(n) == skip[n]}
    assert {n for n in skip if n.startswith(('mapping.', 'synthesis.b4.'))} <= shared
    assert {'synthesis.b8.conv0.weight', 'synthesis.b16.conv0.affine.weight'} <= shared
    assert 'synthesis.b8.torgb.weight' not in shared  # ToRGB reads c/r channels in the squeeze G.
