"""Batched homogeneous 2-D (geometry) and 3-D (colour) transform matrices, and wavelet filters, for AugmentPipe.

Every builder takes per-sample parameters as [N] tensors (numbers broadcast) and returns [N, 3, 3] or
[N, 4, 4] matrices. Geometry matrices act on centred pixel coordinates (x, y, 1); colour matrices on
(r, g, b, 1).
"""

import numpy as np
import torch

#----------------------------------------------------------------------------
# Low-pass filters of orthogonal wavelets (Daubechies 'symlets'); published coefficients.

SYM2 = [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025]
SYM6 = [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148]


def bandpass_filter_bank(lowpass, num_bands=4):
    """[num_bands, taps] zero-phase filters that split a signal into octave bands (lowest first); they sum to a delta.

    Built like a wavelet packet tree from the half-band pair H(z) = `lowpass`, H(-z): each level
    stretches the bands found so far by 2 (zero insertion) and smooths them with H(z)H(1/z)/2, and the
    new band is H(-z)H(-1/z)/2, placed at the centre of its row.
    """
    lo = np.asarray(lowpass, dtype=np.float64)
    hi = lo * (-1.0) ** np.arange(lo.size)
    lo_sq = np.convolve(lo, lo[::-1]) / 2  # Zero-phase power-complementary half-band pair:
    hi_sq = np.convolve(hi, hi[::-1]) / 2  # lo_sq + hi_sq = delta.
    bank = np.zeros([num_bands, 1])
    bank[0, 0] = 1
    for band in range(1, num_bands):
        stretched = np.zeros([num_bands, bank.shape[1] * 2 - 1])
        stretched[:, ::2] = bank
        bank = np.stack([np.convolve(row, lo_sq) for row in stretched])
        start = (bank.shape[1] - hi_sq.size) // 2
        bank[band, start:start + hi_sq.size] += hi_sq
    return bank

#----------------------------------------------------------------------------
# Matrix construction.

def batched_matrix(rows, batch_size, device):
    """[batch_size, R, C] float32 matrices from R rows of C entries, each a number or an [N] tensor."""
    entries = []
    for row in rows:
        assert len(row) == len(rows[0])
        for entry in row:
            entry = torch.as_tensor(entry, dtype=torch.float32, device=device)
            entries.append(entry.reshape([-1]).expand([batch_size]))
    return torch.stack(entries, dim=-1).reshape([batch_size, len(rows), len(rows[0])])


def translate2d(tx, ty, batch_size, device):
    return batched_matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], batch_size, device)


def scale2d(sx, sy, batch_size, device):
    return batched_matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], batch_size, device)


def rotate2d(theta, batch_size, device):
    """Counter-clockwise rotation by `theta` radians (in image coordinates, y pointing down)."""
    c, s = torch.cos(theta), torch.sin(theta)
    return batched_matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], batch_size, device)


def translate3d(tx, ty, tz, batch_size, device):
    return batched_matrix([[1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1]], batch_size, device)


def scale3d(sx, sy, sz, batch_size, device):
    return batched_matrix([[sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1]], batch_size, device)


def rotate3d(axis, theta, batch_size, device):
    """Rotation by `theta` about the unit `axis` (3 numbers), Rodrigues' formula: cI + s[a]x + (1-c)aa^T."""
    ax, ay, az = (float(a) for a in axis)
    c, s = torch.cos(theta), torch.sin(theta)
    k = 1 - c
    return batched_matrix([
        [c + ax * ax * k,      ax * ay * k - az * s, ax * az * k + ay * s, 0],
        [ay * ax * k + az * s, c + ay * ay * k,      ay * az * k - ax * s, 0],
        [az * ax * k - ay * s, az * ay * k + ax * s, c + az * az * k,      0],
        [0,                    0,                    0,                    1],
    ], batch_size, device)

#----------------------------------------------------------------------------
