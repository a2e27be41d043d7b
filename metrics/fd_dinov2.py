"""FD-DINOv2 (Stein et al. 2023; EDM2's protocol): the Fréchet distance between Gaussians fitted to DINOv2 ViT-L/14
features of real and generated images."""

from metrics import detectors
from metrics import metric_utils
from metrics.frechet_inception_distance import frechet_distance


def compute_fd_dinov2(opts, max_real, num_gen):
    """FD-DINOv2 between up to `max_real` dataset images (None = all) and `num_gen` generated images; the moments
    are accumulated in float64 (metrics/feature_stats.py)."""
    mu_real, sigma_real = metric_utils.compute_feature_stats_for_dataset(
        opts, detector=detectors.DINOV2, detector_kwargs={}, capture_mean_cov=True, max_items=max_real).get_mean_cov()
    mu_gen, sigma_gen = metric_utils.compute_feature_stats_for_generator(
        opts, detector=detectors.DINOV2, detector_kwargs={}, capture_mean_cov=True, max_items=num_gen).get_mean_cov()
    if opts.rank != 0:
        return float('nan')
    return frechet_distance(mu_gen, sigma_gen, mu_real, sigma_real)
