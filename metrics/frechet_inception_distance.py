"""Fréchet Inception Distance (Heusel et al. 2017): distance between Gaussians fitted to Inception pool features."""

import numpy as np
import scipy.linalg

from metrics import detectors
from metrics import metric_utils

DETECTOR_KWARGS = dict(return_features=True)  # 2048-dim pool features of the public Inception file.


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)); the real part of the matrix root."""
    if mu1.shape != mu2.shape:
        raise ValueError(f'the two feature sets have {mu1.shape[0]} and {mu2.shape[0]} features: they come from '
                         f'different detectors (reference statistics of another detector?)')
    mean_term = np.square(mu1 - mu2).sum()
    root = scipy.linalg.sqrtm(np.dot(sigma1, sigma2))  # May be complex with a tiny imaginary part.
    return float(np.real(mean_term + np.trace(sigma1 + sigma2 - 2 * root)))


def frechet_distance_of(opts, family, detector, detector_kwargs, max_real, num_gen):
    """Fréchet distance of `detector`'s features between the real images (or the reference statistics of `family`)
    and the generated ones."""
    real = opts.real_moments(family)
    if real is None:
        real = metric_utils.compute_feature_stats_for_dataset(
            opts, detector=detector, detector_kwargs=detector_kwargs, capture_mean_cov=True,
            max_items=max_real).get_mean_cov()
    generated = metric_utils.compute_feature_stats_for_generator(
        opts, detector=detector, detector_kwargs=detector_kwargs, capture_mean_cov=True, max_items=num_gen)
    mu_gen, sigma_gen = generated.get_mean_cov()
    metric_utils.warn_if_biased(opts, family, generated.num_items, mu_gen.shape[0])
    if opts.rank != 0:
        return float('nan')
    return frechet_distance(mu_gen, sigma_gen, *real)


def compute_fid(opts, max_real, num_gen):
    """FID between up to `max_real` dataset images (None = all) and `num_gen` generated images."""
    return frechet_distance_of(opts, 'fid', detectors.INCEPTION, DETECTOR_KWARGS, max_real, num_gen)
