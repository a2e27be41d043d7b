"""AugmentPipe: identity at p = 0, each augmentation's effect, exact blits, gradients to second order, presets."""

import pickle

import numpy as np
import pytest
import torch

from training.augment import matrices as augment_matrices
from training.augment import AugmentPipe, augpipe_specs

SWITCHES = ['xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac', 'brightness', 'contrast',
            'lumaflip', 'hue', 'saturation', 'imgfilter', 'noise', 'cutout']


def _images(n=8, channels=3, res=16, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand([n, channels, res, res], generator=gen) * 2 - 1).to(dtype)

#----------------------------------------------------------------------------

def test_p_zero_leaves_images_unchanged():
    pipe = AugmentPipe(**augpipe_specs['bgcfnc'])
    pipe.p.zero_()
    x = _images()
    assert (pipe(x) - x).abs().max() < 1e-4


def test_identity_transform_through_geometric_path_is_lossless():
    pipe = AugmentPipe(scale=1, scale_std=0)  # Always "scales" by 2^0 = 1, so resampling runs with G = I.
    x = _images()
    assert (pipe(x) - x).abs().max() < 1e-4


@pytest.mark.parametrize('switch', SWITCHES)
def test_each_augmentation_alone_changes_images_and_keeps_shape(switch):
    torch.manual_seed(0)
    pipe = AugmentPipe(**{switch: 1})
    x = _images()
    y = pipe(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.isfinite(y).all() and y.abs().max() < 20
    changed = (y - x).flatten(1).abs().amax(dim=1) > 1e-3
    assert changed.any()


def test_xflip_mirrors_images():
    x = _images()
    y = AugmentPipe(xflip=1)(x, debug_percentile=0.75)
    assert (y - x.flip(3)).abs().max() < 1e-4


def test_rotate90_turns_images_by_quarter_turns():
    x = _images()
    y = AugmentPipe(rotate90=1)(x, debug_percentile=0.3)  # floor(0.3 * 4) = one quarter turn.
    errors = [float((y - torch.rot90(x, k, dims=[2, 3])).abs().max()) for k in (1, -1)]
    assert min(errors) < 1e-4


def test_integer_translation_is_exact_pixel_shift():
    x = _images(res=16)
    y = AugmentPipe(xint=1, xint_max=0.125)(x, debug_percentile=1.0)  # Shift by 0.125 * 16 = 2 pixels in x and y.
    assert (y[:, :, 2:, 2:] - x[:, :, :-2, :-2]).abs().max() < 1e-4


def test_integer_translation_applies_only_with_probability_p():
    pipe = AugmentPipe(xint=1)
    pipe.p.fill_(0.5)
    torch.manual_seed(0)
    x = _images(n=64)
    changed = ((pipe(x) - x).flatten(1).abs().amax(dim=1) > 1e-3).float().mean()
    assert 0.25 < float(changed) < 0.75


def test_cutout_zeroes_a_square_of_the_given_size():
    x = _images(res=16) + 5  # No zeros in the input.
    y = AugmentPipe(cutout=1, cutout_size=0.5)(x, debug_percentile=0.5)
    zeros = (y == 0).all(dim=1)
    assert zeros[:, 4:12, 4:12].all() and int(zeros[0].sum()) == 64


def test_brightness_shifts_all_channels_equally():
    x = _images()
    y = AugmentPipe(brightness=1)(x, debug_percentile=0.9)
    shift = y - x
    assert torch.allclose(shift, shift[:1, :1, :1, :1].expand_as(shift), atol=1e-5) and shift.abs().max() > 0.1


def test_grayscale_images_are_augmented_with_colour_transforms():
    torch.manual_seed(0)
    x = _images(channels=1)
    y = AugmentPipe(**augpipe_specs['bgc'])(x)
    assert y.shape == x.shape and torch.isfinite(y).all() and (y - x).abs().max() > 1e-3


def test_two_channel_images_are_rejected():
    with pytest.raises(ValueError, match='1 or 3'):
        AugmentPipe(xflip=1)(torch.zeros([1, 2, 8, 8]))


def test_image_filter_works_on_images_smaller_than_the_filter():
    torch.manual_seed(0)
    y = AugmentPipe(imgfilter=1)(_images(res=8))
    assert y.shape == (8, 3, 8, 8) and torch.isfinite(y).all()

#----------------------------------------------------------------------------
# Differentiability.

@pytest.mark.parametrize('switch', SWITCHES)
def test_gradients_reach_input_through_every_augmentation(switch):
    torch.manual_seed(0)
    x = _images(n=4).requires_grad_(True)
    y = AugmentPipe(**{switch: 1})(x)
    (y * torch.randn_like(y)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def _r1_like_penalty(pipe, x, weight):
    """|d/dx sum(tanh(pipe(x)) * weight)|^2, built with create_graph like the R1 penalty."""
    torch.manual_seed(1)  # The same random augmentation on every evaluation.
    x = x.detach().requires_grad_(True)
    grad, = torch.autograd.grad((torch.tanh(pipe(x)) * weight).sum(), [x], create_graph=True)
    return grad.square().sum(), x


@pytest.mark.parametrize('spec', ['bgc', 'bgcfnc'])
def test_augmentations_are_differentiable_to_second_order(spec):
    pipe = AugmentPipe(**augpipe_specs[spec])
    gen = torch.Generator().manual_seed(2)
    x = _images(n=2, res=8, dtype=torch.float64)
    weight = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    direction = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    penalty, x_leaf = _r1_like_penalty(pipe, x, weight)
    analytic = (torch.autograd.grad(penalty, [x_leaf])[0] * direction).sum()
    eps = 1e-5
    plus, _ = _r1_like_penalty(pipe, x + eps * direction, weight)
    minus, _ = _r1_like_penalty(pipe, x - eps * direction, weight)
    numeric = (plus - minus).detach() / (2 * eps)
    assert float(analytic) == pytest.approx(float(numeric), rel=1e-4)
    assert abs(float(analytic)) > 1e-3

#----------------------------------------------------------------------------
# Construction, presets, pickling.

def test_constructor_takes_stylegan2_ada_kwargs_with_their_defaults():
    defaults = vars(AugmentPipe())
    assert all(defaults[name] == 0 for name in SWITCHES)
    assert defaults['xint_max'] == 0.125 and defaults['scale_std'] == 0.2 and defaults['rotate_max'] == 1
    assert defaults['aniso_std'] == 0.2 and defaults['xfrac_std'] == 0.125 and defaults['brightness_std'] == 0.2
    assert defaults['contrast_std'] == 0.5 and defaults['hue_max'] == 1 and defaults['saturation_std'] == 1
    assert defaults['imgfilter_bands'] == [1, 1, 1, 1] and defaults['imgfilter_std'] == 1
    assert defaults['noise_std'] == 0.1 and defaults['cutout_size'] == 0.5


def test_buffers_are_named_as_in_stylegan2_ada():
    buffers = dict(AugmentPipe().named_buffers())
    assert set(buffers) == {'p', 'Hz_geom', 'Hz_fbank'}
    assert buffers['p'].shape == () and buffers['Hz_geom'].shape == (12,) and buffers['Hz_fbank'].shape == (4, 43)


def test_presets_combine_the_augmentation_groups():
    assert set(augpipe_specs) == {'blit', 'geom', 'color', 'filter', 'noise', 'cutout', 'bg', 'bgc', 'bgcf', 'bgcfn', 'bgcfnc'}
    assert set(augpipe_specs['bgcfnc']) == set(SWITCHES)
    assert set(augpipe_specs['bg']) == set(augpipe_specs['blit']) | set(augpipe_specs['geom'])
    for spec in augpipe_specs.values():
        assert all(value == 1 for value in spec.values())
        AugmentPipe(**spec)


def test_filter_bank_bands_sum_to_identity():
    bank = augment_matrices.bandpass_filter_bank(augment_matrices.SYM2)
    delta = np.zeros(bank.shape[1])
    delta[bank.shape[1] // 2] = 1
    assert np.allclose(bank.sum(axis=0), delta, atol=1e-12)


def test_pickled_pipe_keeps_p_and_settings():
    pipe = AugmentPipe(**augpipe_specs['bgc'])
    pipe.p.fill_(0.37)
    restored = pickle.loads(pickle.dumps(pipe))
    assert float(restored.p) == pytest.approx(0.37) and restored.hue == 1 and restored.noise == 0

#----------------------------------------------------------------------------


def _smooth_images(n=2, res=16):
    """Low-frequency images, which resampling filters pass almost unchanged."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, res), torch.linspace(-1, 1, res), indexing='ij')
    phases = torch.arange(n * 3, dtype=torch.float32).reshape([n, 3, 1, 1])
    return torch.sin(2 * xs + phases) * torch.cos(1.5 * ys - phases) + 0.3 * xs


def test_fractional_translation_by_whole_pixels_matches_integer_translation():
    x = _images(res=16)
    q = (float(torch.erf(torch.tensor(1.0))) + 1) / 2  # erfinv(2q - 1) = 1: shift by xfrac_std * 16 = 2 px.
    resampled = AugmentPipe(xfrac=1, xfrac_std=0.125)(x, debug_percentile=q)
    assert (resampled[:, :, 2:, 2:] - x[:, :, :-2, :-2]).abs().max() < 1e-4


def test_general_rotation_by_quarter_turn_matches_the_blit_on_smooth_images():
    x = _smooth_images()
    resampled = AugmentPipe(rotate=1, rotate_max=0.5)(x, debug_percentile=1.0)  # Pre-rotation by pi/2 only.
    blitted = AugmentPipe(rotate90=1)(x, debug_percentile=0.3)                 # One quarter turn, exact.
    assert (resampled - blitted).abs().max() < 0.05
