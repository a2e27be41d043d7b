"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2 with a cubic polynomial kernel, over subsets."""

import numpy as np

from metrics import detectors
from metrics import metric_utils

DETECTOR_KWARGS = dict(return_features=True)


def polynomial_kernel(x, y):
    """k(x, y) = (x.y / d + 1)^3, the kernel of the KID paper, for all row pairs."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def unbiased_mmd2(x, y):
    """Unbiased MMD^2 between equal-sized sets x and y [m, d] (same-set sums leave out i == j)."""
    m = x.shape[0]
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    same = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return same - 2 * k_xy.sum() / (m * m)


def kernel_distance(real_features, gen_features, num_subsets, max_subset_size, rng):
    """Mean unbiased MMD^2 over `num_subsets` random equal-sized subsets drawn without replacement."""
    m = min(real_features.shape[0], gen_features.shape[0], max_subset_size)
    if m < 2:
        raise ValueError(f'KID needs at least 2 real and 2 generated samples, got {real_features.shape[0]} and {gen_features.shape[0]}')
    total = 0.0
    for _ in range(num_subsets):
        x = gen_features[rng.choice(gen_features.shape[0], m, replace=False)].astype(np.float64)
        y = real_features[rng.choice(real_features.shape[0], m, replace=False)].astype(np.float64)
        total += unbiased_mmd2(x, y)
    return float(total / num_subsets)


def compute_kid(opts, max_real, num_gen, num_subsets, max_subset_size):
    """KID between up to `max_real` dataset images and `num_gen` generated images."""
    real_features, gen_features = metric_utils.compute_all_features(
        opts, detectors.INCEPTION, DETECTOR_KWARGS, max_real=max_real, num_gen=num_gen)
    if opts.rank != 0:
        return float('nan')
    _z_rng, subset_rng = opts.random_streams(salt=2)
    return kernel_distance(real_features, gen_features, num_subsets, max_subset_size, subset_rng)
