"""Fréchet Inception Distance (Heusel et al. 2017): distance between Gaussians fitted to Inception pool features."""

import numpy as np
import scipy.linalg

from metrics import detectors
from metrics import metric_utils

DETECTOR_KWARGS = dict(return_features=True)  # 2048-dim pool features of the public Inception file.


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)); the real part of the matrix root."""
    mean_term = np.square(mu1 - mu2).sum()
    root = scipy.linalg.sqrtm(np.dot(sigma1, sigma2))  # May be complex with a tiny imaginary part.
    return float(np.real(mean_term + np.trace(sigma1 + sigma2 - 2 * root)))


def compute_fid(opts, max_real, num_gen):
    """FID between up to `max_real` dataset images (None = all) and `num_gen` generated images."""
    mu_real, sigma_real = metric_utils.compute_feature_stats_for_dataset(
        opts, detector=detectors.INCEPTION, detector_kwargs=DETECTOR_KWARGS,
        capture_mean_cov=True, max_items=max_real).get_mean_cov()
    mu_gen, sigma_gen = metric_utils.compute_feature_stats_for_generator(
        opts, detector=detectors.INCEPTION, detector_kwargs=DETECTOR_KWARGS,
        capture_mean_cov=True, max_items=num_gen).get_mean_cov()
    if opts.rank != 0:
        return float('nan')
    return frechet_distance(mu_gen, sigma_gen, mu_real, sigma_real)
