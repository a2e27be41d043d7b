"""Generator behaviour for every synthesis architecture at 16x16: shapes, determinism, noise, truncation, labels, grads."""

import pytest
import torch

from tests.networks_helpers import SYNTHESIS_ARCHS, latents, randomize_trainable_zeros, tiny_generator


@pytest.mark.parametrize('arch', SYNTHESIS_ARCHS)
def test_generator_outputs_float32_image_of_configured_shape(arch):
    G = tiny_generator(arch)
    z, c = latents(batch=3)
    img = G(z, c)
    assert img.shape == (3, 3, 16, 16)
    assert img.dtype == torch.float32
    assert torch.isfinite(img).all()


@pytest.mark.parametrize('arch', SYNTHESIS_ARCHS)
def test_same_seed_builds_identical_generator_and_const_noise_repeats(arch):
    G1, G2 = tiny_generator(arch, seed=5), tiny_generator(arch, seed=5)
    z, c = latents()
    assert torch.equal(G1(z, c, noise_mode='const'), G2(z, c, noise_mode='const'))
    G3 = tiny_generator(arch, seed=6)
    assert not torch.allclose(G1(z, c, noise_mode='const'), G3(z, c, noise_mode='const'))


@pytest.mark.parametrize('arch', ['skip', 'squeeze'])
def test_noise_modes_random_varies_const_and_none_repeat(arch):
    G = randomize_trainable_zeros(tiny_generator(arch)).eval()
    z, c = latents()
    torch.manual_seed(0)
    random_a, random_b = G(z, c, noise_mode='random'), G(z, c, noise_mode='random')
    assert not torch.allclose(random_a, random_b)
    assert torch.equal(G(z, c, noise_mode='const'), G(z, c, noise_mode='const'))
    assert torch.equal(G(z, c, noise_mode='none'), G(z, c, noise_mode='none'))
    assert not torch.allclose(G(z, c, noise_mode='const'), G(z, c, noise_mode='none'))


def test_unknown_noise_mode_is_rejected_with_accepted_values():
    G = tiny_generator('skip')
    with pytest.raises(ValueError, match='random.*const.*none'):
        G(*latents(), noise_mode='fixed')


def test_truncation_psi_zero_gives_w_avg_and_cutoff_limits_it():
    G = tiny_generator('skip').eval()  # Keep w_avg fixed.
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn([G.w_dim]))
    z, c = latents(batch=2)
    ws = G.mapping(z, c, truncation_psi=0)
    assert torch.allclose(ws, G.mapping.w_avg.expand_as(ws))
    ws_cut = G.mapping(z, c, truncation_psi=0, truncation_cutoff=2)
    ws_full = G.mapping(z, c)
    assert torch.allclose(ws_cut[:, :2], G.mapping.w_avg.expand(2, 2, -1))
    assert torch.equal(ws_cut[:, 2:], ws_full[:, 2:])
    half = G.mapping(z, c, truncation_psi=0.5)
    assert torch.allclose(half, G.mapping.w_avg + 0.5 * (ws_full - G.mapping.w_avg), atol=1e-6)


def test_w_avg_tracks_mean_w_in_training_mode_only():
    G = tiny_generator('skip')
    z, c = latents(batch=4)
    G.eval()
    G.mapping(z, c)
    assert torch.equal(G.mapping.w_avg, torch.zeros(G.w_dim))
    G.train()
    ws = G.mapping(z, c)
    expected = torch.zeros(G.w_dim).lerp(ws[:, 0].mean(dim=0), 1 - G.mapping.w_avg_beta)
    assert torch.allclose(G.mapping.w_avg, expected, atol=1e-7)


@pytest.mark.parametrize('arch', ['skip', 'squeeze'])
def test_label_changes_image_of_conditional_generator(arch):
    G = tiny_generator(arch, c_dim=3)
    z, _ = latents(batch=1)
    images = [G(z, torch.eye(3)[[k]], noise_mode='const') for k in range(3)]
    assert images[0].shape == (1, 3, 16, 16)
    assert not torch.allclose(images[0], images[1])
    assert not torch.allclose(images[1], images[2])


@pytest.mark.parametrize('arch', SYNTHESIS_ARCHS)
def test_gradient_reaches_every_generator_parameter(arch):
    G = randomize_trainable_zeros(tiny_generator(arch, c_dim=2))
    z, c = latents(batch=2, c_dim=2)
    G(z, c, noise_mode='random').square().sum().backward()
    missing = [name for name, p in G.named_parameters() if p.grad is None or p.grad.abs().max() == 0]
    assert missing == []


@pytest.mark.parametrize('arch', ['skip', 'squeeze'])
def test_fused_and_unfused_modulated_conv_agree(arch):
    G = randomize_trainable_zeros(tiny_generator(arch))
    ws = G.mapping(*latents())
    fused = G.synthesis(ws, noise_mode='const', fused_modconv=True)
    unfused = G.synthesis(ws, noise_mode='const', fused_modconv=False)
    assert torch.allclose(fused, unfused, atol=1e-5)


@pytest.mark.parametrize('arch', ['skip', 'squeeze'])
def test_fp16_blocks_run_in_half_and_force_fp32_restores_float(arch):
    G = tiny_generator(arch, num_fp16_res=2, conv_clamp=256).eval()
    ws = G.mapping(*latents())
    dtypes = {}
    hooks = [block.register_forward_hook(lambda m, i, o, r=res: dtypes.__setitem__(r, o[0].dtype))
             for res, block in ((r, getattr(G.synthesis, f'b{r}')) for r in G.synthesis.block_resolutions)]
    img16 = G.synthesis(ws, noise_mode='const')
    assert dtypes == {4: torch.float32, 8: torch.float16, 16: torch.float16}
    img32 = G.synthesis(ws, noise_mode='const', force_fp32=True)
    assert set(dtypes.values()) == {torch.float32}
    for hook in hooks:
        hook.remove()
    assert img16.dtype == img32.dtype == torch.float32
    assert (img16 - img32).abs().max() < 1e-2  # Measured 3.3e-3 (pixels up to 4.6), CPU, 2026-12-03: 3x margin.


def test_conv_clamp_bounds_every_synthesis_layer_output():
    G = randomize_trainable_zeros(tiny_generator('skip', conv_clamp=0.05))
    outputs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outputs.append(o.abs().max().item()))
             for name, m in G.named_modules() if name.endswith(('conv0', 'conv1'))]
    G(*latents())
    for hook in hooks:
        hook.remove()
    assert len(outputs) == 5 and max(outputs) <= 0.05 + 1e-6


def test_channels_last_fp16_generator_matches_contiguous_one():
    G = tiny_generator('skip', num_fp16_res=2, conv_clamp=256, fp16_channels_last=True).eval()
    G_plain = tiny_generator('skip', num_fp16_res=2, conv_clamp=256).eval()
    assert G.synthesis.b16.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    z, c = latents()
    # Measured 3.8e-3 (fp16 sums in another order), CPU, 2026-12-03: the bound is about 3x that.
    assert torch.allclose(G(z, c, noise_mode='const'), G_plain(z, c, noise_mode='const'), atol=1.2e-2, rtol=0)


def test_unknown_architecture_error_lists_the_registry():
    with pytest.raises(ValueError, match='orig, skip, resnet, squeeze'):
        tiny_generator('dense')
