"""AugmentPipe: the differentiable ADA augmentations (Karras et al. 2020, "Training GANs with Limited Data", App. B).

Each augmentation is applied to each image independently with probability `strength * p`, where the
per-augmentation strength is a constructor argument (0 = off, 1 = on) and `p` is the buffer the ADA
controller adjusts. In order: pixel blitting and general geometric transforms (composed into one
homogeneous matrix and resampled once, on a 2x upsampled image with a wavelet low-pass filter and
reflection padding, so no edge or aliasing artifacts leak to the discriminator), colour transforms
(one 4x4 matrix), image-space filtering (random per-band gains), additive noise and cutout. Every step
is differentiable with respect to the images, to second order (R1 differentiates through it).

The constructor arguments, defaults and buffers (`p`, `Hz_geom`, `Hz_fbank`) are those of
stylegan2-ada-pytorch, because network snapshots pickle the pipe.
"""

import numpy as np
import torch

from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import grid_sample_gradfix
from torch_utils.ops import upfirdn2d
from training.augment import matrices as mat

#----------------------------------------------------------------------------
# Presets (train.py --augpipe): which augmentations are switched on.

_BLIT = dict(xflip=1, rotate90=1, xint=1)
_GEOM = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_COLOR = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
_FILTER = dict(imgfilter=1)
_NOISE = dict(noise=1)
_CUTOUT = dict(cutout=1)

augpipe_specs = {
    'blit':   _BLIT,
    'geom':   _GEOM,
    'color':  _COLOR,
    'filter': _FILTER,
    'noise':  _NOISE,
    'cutout': _CUTOUT,
    'bg':     {**_BLIT, **_GEOM},
    'bgc':    {**_BLIT, **_GEOM, **_COLOR},
    'bgcf':   {**_BLIT, **_GEOM, **_COLOR, **_FILTER},
    'bgcfn':  {**_BLIT, **_GEOM, **_COLOR, **_FILTER, **_NOISE},
    'bgcfnc': {**_BLIT, **_GEOM, **_COLOR, **_FILTER, **_NOISE, **_CUTOUT},
}

_LUMA_AXIS = np.array([1, 1, 1]) / np.sqrt(3)           # Grey axis of RGB space.
_BAND_POWER = np.array([10, 1, 1, 1], dtype=np.float32) / 13  # Expected power per band (1/f spectrum).

#----------------------------------------------------------------------------

@persistence.persistent_class
class AugmentPipe(torch.nn.Module):
    """ADA augmentation pipeline; all augmentations are off by default (strength 0)."""

    def __init__(self,
        xflip=0,                        # Strength of x-flips.
        rotate90=0,                     # Strength of rotations by multiples of 90 degrees.
        xint=0,                         # Strength of integer translation.
        xint_max=0.125,                 # Largest integer translation, relative to image size.
        scale=0,                        # Strength of isotropic scaling.
        rotate=0,                       # Strength of arbitrary rotation.
        aniso=0,                        # Strength of anisotropic scaling.
        xfrac=0,                        # Strength of fractional translation.
        scale_std=0.2,                  # Log2 standard deviation of isotropic scaling.
        rotate_max=1,                   # Largest rotation, 1 = full circle.
        aniso_std=0.2,                  # Log2 standard deviation of anisotropic scaling.
        xfrac_std=0.125,                # Standard deviation of fractional translation, relative to image size.
        brightness=0,                   # Strength of brightness shifts.
        contrast=0,                     # Strength of contrast scaling.
        lumaflip=0,                     # Strength of luma flips.
        hue=0,                          # Strength of hue rotation.
        saturation=0,                   # Strength of saturation scaling.
        brightness_std=0.2,             # Standard deviation of the brightness shift.
        contrast_std=0.5,               # Log2 standard deviation of contrast.
        hue_max=1,                      # Largest hue rotation, 1 = full circle.
        saturation_std=1,               # Log2 standard deviation of saturation.
        imgfilter=0,                    # Strength of image-space filtering.
        imgfilter_bands=[1, 1, 1, 1],   # Strength multipliers of the four frequency bands (low to high).
        imgfilter_std=1,                # Log2 standard deviation of a band's gain.
        noise=0,                        # Strength of additive Gaussian noise.
        cutout=0,                       # Strength of cutout.
        noise_std=0.1,                  # Standard deviation of the noise's sigma (|N(0, noise_std)|).
        cutout_size=0.5,                # Side of the cutout square, relative to image size.
    ):
        super().__init__()
        self.register_buffer('p', torch.ones([]))  # Overall probability multiplier, set by the ADA controller.

        self.xflip, self.rotate90, self.xint, self.xint_max = float(xflip), float(rotate90), float(xint), float(xint_max)
        self.scale, self.rotate, self.aniso, self.xfrac = float(scale), float(rotate), float(aniso), float(xfrac)
        self.scale_std, self.rotate_max = float(scale_std), float(rotate_max)
        self.aniso_std, self.xfrac_std = float(aniso_std), float(xfrac_std)
        self.brightness, self.contrast, self.lumaflip = float(brightness), float(contrast), float(lumaflip)
        self.hue, self.saturation = float(hue), float(saturation)
        self.brightness_std, self.contrast_std = float(brightness_std), float(contrast_std)
        self.hue_max, self.saturation_std = float(hue_max), float(saturation_std)
        self.imgfilter, self.imgfilter_bands, self.imgfilter_std = float(imgfilter), list(imgfilter_bands), float(imgfilter_std)
        self.noise, self.cutout, self.noise_std, self.cutout_size = float(noise), float(cutout), float(noise_std), float(cutout_size)

        self.register_buffer('Hz_geom', upfirdn2d.setup_filter(mat.SYM6))  # Orthogonal low-pass for 2x resampling.
        self.register_buffer('Hz_fbank', torch.as_tensor(mat.bandpass_filter_bank(mat.SYM2), dtype=torch.float32))
        if len(self.imgfilter_bands) != self.Hz_fbank.shape[0]:
            raise ValueError(f'AugmentPipe: imgfilter_bands needs {self.Hz_fbank.shape[0]} values, got {imgfilter_bands!r}')

    def forward(self, images, debug_percentile=None, features=None):
        """Augment a batch [N, C, H, W] (C = 1 or 3). `debug_percentile` in [0, 1] forces every enabled
        augmentation on, with its parameter at that percentile of its distribution (for visual checks).

        features: optional maps [N, any C, h, w] (the images' aspect, e.g. G's synthesis features for GGDR) that get the
        images' geometric draws the way GGDR moves them (`_move_features`), and nothing else; then (images, features)
        is returned.
        """
        if not (isinstance(images, torch.Tensor) and images.ndim == 4 and images.shape[1] in (1, 3)):
            raise ValueError(f'AugmentPipe: expected images [N, 1 or 3, H, W], got {getattr(images, "shape", type(images))}')
        draw = _Sampler(images.shape[0], images.device, self.p, debug_percentile)
        steps = self._geometric_steps(draw)
        if features is not None:
            features = self._move_features(features, images.shape, steps)
        images = self._move(images, steps)
        C = self._color(draw, images.shape[1])
        if C is not None:
            images = _apply_color_matrix(images, C)
        if self.imgfilter > 0:
            images = self._filter(draw, images)
        if self.noise > 0:
            sigma = draw.gated(self.noise, draw.randn([1, 1, 1]).abs() * self.noise_std, 0,
                               forced=lambda q: torch.erfinv(q) * self.noise_std)
            images = images + torch.randn_like(images) * sigma.to(images.dtype)
        if self.cutout > 0:
            images = images * self._cutout_mask(draw, images.shape).to(images.dtype)
        return images if features is None else (images, features)

    # Geometry ---------------------------------------------------------------
    # G_inv maps centred output pixel coordinates to the input coordinates they sample from.

    def _geometric_steps(self, draw):
        """This batch's geometric draws, in the order they apply: [(is_blit, matrix(height, width) -> G_inv part)].

        Each matrix is built for maps of the given size (translations are relative to it), so G's features for
        GGDR get the images' draws at their own size (`_move_features`).
        """
        n, device = draw.batch_size, draw.device
        steps = []
        if self.xflip > 0:
            flip = draw.gated(self.xflip, torch.floor(draw.rand() * 2), 0, forced=lambda q: torch.floor(q * 2))
            steps.append((True, lambda h, w, flip=flip: mat.scale2d(1 - 2 * flip, 1, n, device)))
        if self.rotate90 > 0:
            quarter = draw.gated(self.rotate90, torch.floor(draw.rand() * 4), 0, forced=lambda q: torch.floor(q * 4))
            steps.append((True, lambda h, w, quarter=quarter: mat.rotate2d(np.pi / 2 * quarter, n, device)))
        if self.xint > 0:
            t = draw.gated(self.xint, (draw.rand([2]) * 2 - 1) * self.xint_max, 0,
                           forced=lambda q: (q * 2 - 1) * self.xint_max)
            steps.append((True, lambda h, w, t=t: mat.translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h),
                                                                  n, device)))
        lognormal = lambda std: (lambda q: torch.exp2(torch.erfinv(q * 2 - 1) * std))
        if self.scale > 0:
            s = draw.gated(self.scale, torch.exp2(draw.randn() * self.scale_std), 1, forced=lognormal(self.scale_std))
            steps.append((False, lambda h, w, s=s: mat.scale2d(1 / s, 1 / s, n, device)))
        # Rotation happens before and after the anisotropic scaling, each with a probability chosen so
        # that P(either) = rotate * p.
        p_rot = 1 - torch.sqrt((1 - self.rotate * self.p).clamp(0, 1))
        angle = lambda: (draw.rand() * 2 - 1) * np.pi * self.rotate_max
        if self.rotate > 0:
            theta = draw.gated(p_rot, angle(), 0, forced=lambda q: (q * 2 - 1) * np.pi * self.rotate_max, absolute=True)
            steps.append((False, lambda h, w, theta=theta: mat.rotate2d(theta, n, device)))
        if self.aniso > 0:
            s = draw.gated(self.aniso, torch.exp2(draw.randn() * self.aniso_std), 1, forced=lognormal(self.aniso_std))
            steps.append((False, lambda h, w, s=s: mat.scale2d(1 / s, s, n, device)))
        if self.rotate > 0:
            theta = draw.gated(p_rot, angle(), 0, forced=lambda q: torch.zeros_like(q), absolute=True)
            steps.append((False, lambda h, w, theta=theta: mat.rotate2d(theta, n, device)))
        if self.xfrac > 0:
            t = draw.gated(self.xfrac, draw.randn([2]) * self.xfrac_std, 0,
                           forced=lambda q: torch.erfinv(q * 2 - 1) * self.xfrac_std)
            steps.append((False, lambda h, w, t=t: mat.translate2d(-t[:, 0] * w, -t[:, 1] * h, n, device)))
        return steps

    def _move(self, images, steps):
        """Apply the geometric draws: an exact pixel copy when only blits were drawn, else resampling."""
        G_blit, G_inv = _matrices(steps, *images.shape[2:])
        if G_inv is not G_blit or (G_inv is not None and images.shape[2] != images.shape[3]):
            return self._resample(images, G_inv)
        if G_blit is not None:
            return _blit(images, G_blit)  # Flips, quarter turns, integer shifts only: copy pixels exactly.
        return images

    def _move_features(self, features, image_shape, steps):
        """GGDR's augmentation of G's features (Lee et al. 2022, Sec. 3.3), as naver-ai/GGDR's AugmentPipeGFeat computes
        it (tests/reference/record_ggdr_augment.py): the images' draws at the features' own size (translations
        relative to it, integer ones rounded there), always resampled once any geometric augmentation is on (also
        where this batch drew none, and at p = 0), with bilinear instead of wavelet 2x upsampling.
        """
        same_aspect = features.ndim == 4 and features.shape[2] * image_shape[3] == features.shape[3] * image_shape[2]
        if not same_aspect or features.shape[0] != image_shape[0]:
            raise ValueError(f'AugmentPipe: features must be maps [N, C, h, w] of the images\' aspect h:w = '
                             f'{image_shape[2]}:{image_shape[3]} with N = {image_shape[0]}, got {list(features.shape)}')
        if not steps:
            return features
        _G_blit, G_inv = _matrices(steps, *features.shape[2:])
        return self._resample(features, G_inv, bilinear_upsampling=True)

    def _resample(self, images, G_inv, bilinear_upsampling=False):
        """Apply G_inv: reflect-pad, upsample 2x (wavelet filter, or bilinear for GGDR's features), grid-sample,
        filter, downsample 2x, crop."""
        n, channels, height, width = images.shape
        device = images.device
        half_taps = self.Hz_geom.shape[0] // 4  # Filter support in input pixels, on each side.

        # Reflection padding large enough that every sampled point (plus filter support) lies inside.
        cx, cy = (width - 1) / 2, (height - 1) / 2
        corners = torch.tensor([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1, 1, 1, 1]], device=device)
        reach = (G_inv @ corners)[:, :2, :]                                   # [N, xy, corner]
        reach = torch.stack([-reach[:, 0], -reach[:, 1], reach[:, 0], reach[:, 1]]).flatten(1).amax(dim=1)  # [x0, y0, x1, y1]
        reach = reach + torch.tensor([2 * half_taps - cx, 2 * half_taps - cy] * 2, device=device)
        limits = torch.tensor([width - 1, height - 1] * 2, device=device)
        # The one read to the host of a geometric pass (as in stylegan2-ada-pytorch, which reads it 4 times): the
        # padding depends on the drawn transforms, and a static bound (the whole image) costs more time than the read.
        left, top, right, bottom = reach.clamp(min=0).minimum(limits).ceil().to(torch.int64).tolist()
        images = torch.nn.functional.pad(images, [left, right, top, bottom], mode='reflect')
        G_inv = mat.translate2d((left - right) / 2, (top - bottom) / 2, n, device) @ G_inv

        # Upsampled pixel 2i is input pixel i: in centred coordinates u = 2x - 1/2.
        if bilinear_upsampling:
            images = torch.nn.functional.interpolate(images, scale_factor=2, mode='bilinear', align_corners=False)
        else:
            images = upfirdn2d.upsample2d(images, self.Hz_geom, up=2)
        to_up = mat.translate2d(-0.5, -0.5, n, device) @ mat.scale2d(2, 2, n, device)
        from_up = mat.scale2d(0.5, 0.5, n, device) @ mat.translate2d(0.5, 0.5, n, device)
        G_inv = to_up @ G_inv @ from_up

        # grid_sample works in [-1, 1] coordinates (align_corners=False): centred pixels times 2 / size.
        out_shape = [n, channels, (height + half_taps * 2) * 2, (width + half_taps * 2) * 2]
        to_unit = mat.scale2d(2 / images.shape[3], 2 / images.shape[2], n, device)
        from_unit = mat.scale2d(out_shape[3] / 2, out_shape[2] / 2, n, device)
        theta = (to_unit @ G_inv @ from_unit)[:, :2, :].to(images.dtype)
        grid = torch.nn.functional.affine_grid(theta, out_shape, align_corners=False)
        images = grid_sample_gradfix.grid_sample(images, grid)

        # The flipped filter undoes the upsampling filter (orthogonal wavelet); the crop drops the margin.
        return upfirdn2d.downsample2d(images, self.Hz_geom, down=2, padding=-half_taps * 2, flip_filter=True)

    # Colour -----------------------------------------------------------------

    def _color(self, draw, num_channels):
        """4x4 colour matrix acting on (r, g, b, 1), or None when no colour augmentation is on."""
        n, device = draw.batch_size, draw.device
        C = None
        if self.brightness > 0:
            b = draw.gated(self.brightness, draw.randn() * self.brightness_std, 0,
                           forced=lambda q: torch.erfinv(q * 2 - 1) * self.brightness_std)
            C = _compose(mat.translate3d(b, b, b, n, device), C)
        if self.contrast > 0:
            c = draw.gated(self.contrast, torch.exp2(draw.randn() * self.contrast_std), 1,
                           forced=lambda q: torch.exp2(torch.erfinv(q * 2 - 1) * self.contrast_std))
            C = _compose(mat.scale3d(c, c, c, n, device), C)
        axis = torch.tensor([*_LUMA_AXIS, 0], dtype=torch.float32, device=device)
        grey = torch.outer(axis, axis)                       # Projection onto the grey axis.
        eye = torch.eye(4, device=device)
        if self.lumaflip > 0:
            flip = draw.gated(self.lumaflip, torch.floor(draw.rand() * 2), 0, forced=lambda q: torch.floor(q * 2))
            C = _compose(eye - 2 * grey * flip.reshape([-1, 1, 1]), C)  # Householder reflection of luma.
        if self.hue > 0 and num_channels > 1:
            theta = draw.gated(self.hue, (draw.rand() * 2 - 1) * np.pi * self.hue_max, 0,
                               forced=lambda q: (q * 2 - 1) * np.pi * self.hue_max)
            C = _compose(mat.rotate3d(_LUMA_AXIS, theta, n, device), C)
        if self.saturation > 0 and num_channels > 1:
            s = draw.gated(self.saturation, torch.exp2(draw.randn() * self.saturation_std), 1,
                           forced=lambda q: torch.exp2(torch.erfinv(q * 2 - 1) * self.saturation_std))
            C = _compose(grey + (eye - grey) * s.reshape([-1, 1, 1]), C)
        return C

    # Filtering and corruptions ---------------------------------------------

    def _filter(self, draw, images):
        """Amplify each frequency band by a random gain, keeping the expected image power unchanged."""
        n, channels, height, width = images.shape
        num_bands = self.Hz_fbank.shape[0]
        band_power = misc.constant(_BAND_POWER, device=images.device)
        gains = torch.ones([n, num_bands], device=images.device)
        for band, band_strength in enumerate(self.imgfilter_bands):
            forced = (lambda q: torch.exp2(torch.erfinv(q * 2 - 1) * self.imgfilter_std)) if band_strength > 0 else (lambda q: torch.ones_like(q))
            g = draw.gated(self.imgfilter * band_strength, torch.exp2(draw.randn() * self.imgfilter_std), 1, forced=forced)
            one_band = torch.ones([n, num_bands], device=images.device)
            one_band[:, band] = g
            one_band = one_band / (band_power * one_band.square()).sum(dim=1, keepdim=True).sqrt()
            gains = gains * one_band
        taps = (gains @ self.Hz_fbank).to(images.dtype)             # [N, taps]: one zero-phase filter per image.
        taps = taps.repeat_interleave(channels, dim=0).unsqueeze(1)  # [N * C, 1, taps]
        pad = self.Hz_fbank.shape[1] // 2
        x = images.reshape([1, n * channels, height, width])
        x = _reflect_pad(x, pad)
        x = conv2d_gradfix.conv2d(x, taps.unsqueeze(2), groups=n * channels)  # Along x.
        x = conv2d_gradfix.conv2d(x, taps.unsqueeze(3), groups=n * channels)  # Along y.
        return x.reshape([n, channels, height, width])

    def _cutout_mask(self, draw, shape):
        """[N, 1, H, W] mask that is 0 inside a square of side cutout_size at a random centre."""
        n, _, height, width = shape
        size = draw.gated(self.cutout, torch.full([n, 1], self.cutout_size, device=draw.device), 0,
                          forced=lambda q: torch.full_like(q, self.cutout_size))
        center = draw.rand([2]) if draw.debug is None else torch.full([n, 2], float(draw.debug), device=draw.device)
        xs = (torch.arange(width, device=draw.device) + 0.5) / width
        ys = (torch.arange(height, device=draw.device) + 0.5) / height
        outside_x = (xs.reshape([1, 1, 1, -1]) - center[:, 0].reshape([-1, 1, 1, 1])).abs() >= size.reshape([-1, 1, 1, 1]) / 2
        outside_y = (ys.reshape([1, 1, -1, 1]) - center[:, 1].reshape([-1, 1, 1, 1])).abs() >= size.reshape([-1, 1, 1, 1]) / 2
        return (outside_x | outside_y).float()

#----------------------------------------------------------------------------

class _Sampler:
    """Random draws for one batch, and the gate that applies a draw with probability strength * p."""

    def __init__(self, batch_size, device, p, debug_percentile):
        self.batch_size = batch_size
        self.device = device
        self.p = p
        self.debug = None if debug_percentile is None else torch.as_tensor(debug_percentile, dtype=torch.float32, device=device)

    def rand(self, shape=()):
        return torch.rand([self.batch_size, *shape], device=self.device)

    def randn(self, shape=()):
        return torch.randn([self.batch_size, *shape], device=self.device)

    def gated(self, strength, value, identity, forced, absolute=False):
        """`value` per sample with probability strength * p (or `strength` itself when absolute), else `identity`.

        With a debug percentile, every sample gets forced(percentile) instead.
        """
        if self.debug is not None:
            return forced(self.debug).expand(value.shape).clone()
        probability = strength if absolute else strength * self.p
        keep = torch.rand([self.batch_size] + [1] * (value.ndim - 1), device=self.device) < probability
        return torch.where(keep, value, torch.full_like(value, identity))


def _compose(A, B):
    """A @ B, where None stands for the identity."""
    if A is None:
        return B
    if B is None:
        return A
    return A @ B


def _matrices(steps, height, width):
    """(G_blit, G_inv) of `steps` for maps of height x width: the product of the blit steps (which come first), and
    of all; None stands for the identity, and G_inv is G_blit when every step is a blit."""
    G_blit = G_inv = None
    for is_blit, matrix in steps:
        G_inv = _compose(G_inv, matrix(height, width))
        if is_blit:
            G_blit = G_inv
    return G_blit, G_inv


def _blit(images, G_inv):
    """Copy pixels through an integer-valued G_inv (square images), reflecting coordinates outside the image."""
    n, channels, height, width = images.shape
    center = (width - 1) / 2
    ys, xs = torch.meshgrid(torch.arange(height, device=images.device), torch.arange(width, device=images.device), indexing='ij')
    out = torch.stack([xs.flatten() - center, ys.flatten() - center, torch.ones([height * width], device=images.device)])
    src = torch.round(G_inv @ out + center).to(torch.int64)[:, :2]          # [N, xy, H*W]
    period = 2 * (width - 1)
    src = src.remainder(max(period, 1))
    src = torch.where(src > width - 1, period - src, src)                   # Mirror like 'reflect' padding.
    index = (src[:, 1] * width + src[:, 0]).unsqueeze(1).expand([n, channels, height * width])
    return images.flatten(2).gather(2, index).reshape(images.shape)


def _reflect_pad(x, pad):
    """Reflection padding by `pad` on every side, also when `pad` exceeds the image (repeated reflection)."""
    while pad > 0:
        step = min(pad, x.shape[2] - 1, x.shape[3] - 1)
        x = torch.nn.functional.pad(x, [step, step, step, step], mode='reflect')
        pad -= step
    return x


def _apply_color_matrix(images, C):
    """Apply [N, 4, 4] colour matrices; a grey image is treated as (l, l, l) and averaged back to one channel."""
    n, channels, height, width = images.shape
    C = C.to(images.dtype)
    x = images.reshape([n, channels, height * width])
    if channels == 3:
        x = C[:, :3, :3] @ x + C[:, :3, 3:]
    else:
        rows = C[:, :3, :].mean(dim=1, keepdim=True)                   # [N, 1, 4]
        x = x * rows[:, :, :3].sum(dim=2, keepdim=True) + rows[:, :, 3:]
    return x.reshape([n, channels, height, width])

#----------------------------------------------------------------------------
