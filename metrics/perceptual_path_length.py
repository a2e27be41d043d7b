"""Perceptual path length (Karras et al. 2019, StyleGAN sec. 3): LPIPS change per epsilon step along latent paths."""

import copy

import numpy as np
import torch

from metrics import detectors
from metrics import metric_utils

SPACES = ('z', 'w')         # Interpolate latents z (slerp) or intermediate latents w (lerp).
SAMPLINGS = ('full', 'end')  # t uniform in [0, 1], or t = 0 (path end points).


def slerp(a, b, t):
    """Spherical interpolation between the directions of a and b (rows), t in [0, 1]; result has unit norm."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    cos_angle = (a * b).sum(dim=-1, keepdim=True).clamp(-1, 1)
    angle = t * torch.acos(cos_angle)
    ortho = b - cos_angle * a  # Component of b orthogonal to a: the great circle's second axis.
    ortho = ortho / ortho.norm(dim=-1, keepdim=True)
    out = a * torch.cos(angle) + ortho * torch.sin(angle)
    return out / out.norm(dim=-1, keepdim=True)


def interpolated_ws(G, z0, z1, c, t, epsilon, space):
    """ws at t and t + epsilon along the path from z0 to z1: [2N, num_ws, w_dim] (first half at t)."""
    if space == 'w':
        w0, w1 = G.mapping(torch.cat([z0, z1]), torch.cat([c, c])).chunk(2)
        t = t.reshape(-1, 1, 1)
        return torch.cat([w0.lerp(w1, t), w0.lerp(w1, t + epsilon)])
    t = t.reshape(-1, 1)
    z_pair = torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)])
    return G.mapping(z_pair, torch.cat([c, c]))


def images_for_lpips(img, img_resolution, crop):
    """Generator output [-1, 1] -> float [0, 255], three channels, face-cropped and at most 256 px wide."""
    if crop:  # The face region of an FFHQ-aligned image: rows 3/8..7/8, columns 2/8..6/8.
        row, col = img.shape[2] // 8, img.shape[3] // 8  # Eighths of the height and of the width.
        img = img[:, :, row * 3: row * 7, col * 2: col * 6]
    factor = img_resolution // 256
    if factor > 1:  # Box-filter down to the resolution LPIPS was calibrated at.
        img = img.reshape([img.shape[0], img.shape[1], img.shape[2] // factor, factor, img.shape[3] // factor, factor]).mean([3, 5])
    img = (img + 1) * (255 / 2)
    if img.shape[1] == 1:
        img = img.repeat([1, 3, 1, 1])
    return img


def path_length_samples(G, vgg16, c, epsilon, space, sampling, crop, z_rng, G_kwargs={}):
    """One batch of squared LPIPS distances divided by epsilon^2, one per path."""
    n = c.shape[0]
    t = torch.rand([n], generator=z_rng).to(c.device) * (1 if sampling == 'full' else 0)
    z0, z1 = torch.randn([n * 2, G.z_dim], generator=z_rng).to(c.device).chunk(2)
    ws = interpolated_ws(G, z0, z1, c, t, epsilon, space)
    img = G.synthesis(ws, noise_mode='const', force_fp32=True, **G_kwargs)
    img = images_for_lpips(img, G.img_resolution, crop)
    lpips_t0, lpips_t1 = vgg16(img, resize_images=False, return_lpips=True).chunk(2)
    return (lpips_t0 - lpips_t1).square().sum(dim=1) / epsilon ** 2


def trimmed_mean(dist):
    """Mean of the samples between the 1st and 99th percentiles, as in StyleGAN (outliers from
    degenerate paths would otherwise dominate)."""
    dist = np.asarray(dist, dtype=np.float64)
    lo = np.percentile(dist, 1, method='lower')
    hi = np.percentile(dist, 99, method='higher')
    return float(dist[(dist >= lo) & (dist <= hi)].mean())


def randomize_noise_buffers(G, z_rng):
    """Fresh per-layer noise: PPL measures the latent path, with noise fixed between t and t + epsilon."""
    for name, buf in G.named_buffers():
        if name.endswith('noise_const'):
            buf.copy_(torch.randn(buf.shape, generator=z_rng).to(buf.device, buf.dtype))


def compute_ppl(opts, num_samples, epsilon, space, sampling, crop, batch_size):
    """PPL of opts.G over `num_samples` paths, split across ranks."""
    if space not in SPACES or sampling not in SAMPLINGS:
        raise ValueError(f'space={space!r}, sampling={sampling!r}; accepted: space in {SPACES}, sampling in {SAMPLINGS}')
    vgg16, _digest = opts.get_detector(detectors.VGG16)
    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    z_rng, label_rng = opts.random_streams(salt=3)
    sample_labels = metric_utils.make_label_sampler(opts, G.c_dim, label_rng)

    dist = []
    progress = opts.progress.sub(tag='ppl sampling', num_items=num_samples)
    for batch_start in range(0, num_samples, batch_size * opts.num_gpus):
        progress.update(batch_start)
        randomize_noise_buffers(G, z_rng)
        with torch.no_grad():
            batch = path_length_samples(G, vgg16, sample_labels(batch_size), epsilon, space, sampling, crop, z_rng, opts.G_kwargs)
        dist.append(metric_utils.gather_rows(batch, opts.num_gpus).cpu())
    progress.update(num_samples)
    if opts.rank != 0:
        return float('nan')
    return trimmed_mean(torch.cat(dist)[:num_samples].numpy())
