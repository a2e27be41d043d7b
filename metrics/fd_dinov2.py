"""FD-DINOv2 (Stein et al. 2023; EDM2's protocol): the Fréchet distance between Gaussians fitted to DINOv2 ViT-L/14
features of real and generated images."""

from metrics import detectors
from metrics.frechet_inception_distance import frechet_distance_of


def compute_fd_dinov2(opts, max_real, num_gen):
    """FD-DINOv2 between up to `max_real` dataset images (None = all) and `num_gen` generated images; the moments
    are accumulated in float64 (metrics/feature_stats.py)."""
    return frechet_distance_of(opts, 'fd_dinov2', detectors.DINOV2, {}, max_real, num_gen)
