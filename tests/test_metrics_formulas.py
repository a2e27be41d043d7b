"""Metric formulas against closed forms and brute force: FID, KID, precision/recall, IS, PPL."""

import itertools

import numpy as np
import pytest
import torch

from metrics.feature_stats import FeatureStats
from metrics.frechet_inception_distance import frechet_distance
from metrics.inception_score import inception_score
from metrics.kernel_inception_distance import kernel_distance
from metrics.perceptual_path_length import images_for_lpips, slerp, trimmed_mean
from metrics.precision_recall import precision_recall


def _random_spd(rng, dim):
    a = rng.normal(size=[dim, dim])
    return a @ a.T + dim * np.eye(dim) * 0.1


def _sqrt_spd(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T

#----------------------------------------------------------------------------
# FID


def test_fid_of_identical_feature_sets_is_zero():
    rng = np.random.RandomState(0)
    stats = FeatureStats(capture_mean_cov=True)
    stats.append(rng.normal(size=[500, 6]))
    mu, sigma = stats.get_mean_cov()
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6


def test_fid_of_two_gaussians_equals_closed_form():
    # Closed form via symmetric roots: Tr((S1^1/2 S2 S1^1/2)^1/2) = Tr((S1 S2)^1/2).
    rng = np.random.RandomState(1)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    s1, s2 = _random_spd(rng, 5), _random_spd(rng, 5)
    root1 = _sqrt_spd(s1)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(_sqrt_spd(root1 @ s2 @ root1))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_fid_of_one_dimensional_gaussians_is_mean_and_std_difference_squared():
    value = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]]))
    assert value == pytest.approx((1 + 2) ** 2 + (2 - 3) ** 2)


def test_feature_stats_mean_cov_match_numpy_across_batches():
    rng = np.random.RandomState(2)
    rows = rng.normal(size=[300, 4])
    stats = FeatureStats(capture_mean_cov=True, capture_all=True, max_items=250)
    for batch in np.array_split(rows, 7):
        stats.append(batch)
    mean, cov = stats.get_mean_cov()
    kept = rows[:250].astype(np.float32).astype(np.float64)
    assert stats.num_items == 250 and stats.get_all().shape == (250, 4)
    np.testing.assert_allclose(mean, kept.mean(axis=0), atol=1e-10)
    np.testing.assert_allclose(cov, np.cov(kept, rowvar=False, bias=True), atol=1e-10)

#----------------------------------------------------------------------------
# KID


def _brute_force_unbiased_mmd2(x, y):
    def k(a, b):
        return (np.dot(a, b) / len(a) + 1) ** 3
    m = len(x)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_with_one_full_subset_equals_brute_force_unbiased_mmd():
    rng = np.random.RandomState(3)
    real, gen = rng.normal(size=[12, 3]), rng.normal(loc=0.5, size=[12, 3])
    kid = kernel_distance(real, gen, num_subsets=1, max_subset_size=1000, rng=np.random.RandomState(0))
    assert kid == pytest.approx(_brute_force_unbiased_mmd2(gen, real), rel=1e-9)


def test_kid_is_near_zero_for_same_distribution_and_large_for_disjoint_sets():
    rng = np.random.RandomState(4)
    real, same = rng.normal(size=[400, 4]), rng.normal(size=[400, 4])
    far = rng.normal(loc=5, size=[400, 4])
    near = kernel_distance(real, same, num_subsets=20, max_subset_size=100, rng=np.random.RandomState(0))
    disjoint = kernel_distance(real, far, num_subsets=20, max_subset_size=100, rng=np.random.RandomState(0))
    assert abs(near) < 0.05 and disjoint > 10


def test_kid_rejects_fewer_than_two_samples():
    with pytest.raises(ValueError, match='at least 2'):
        kernel_distance(np.zeros([1, 3]), np.zeros([5, 3]), 1, 1000, np.random.RandomState(0))

#----------------------------------------------------------------------------
# Precision and recall


def test_precision_recall_of_identical_sets_is_one():
    points = np.random.RandomState(5).normal(size=[50, 3])
    assert precision_recall(points, points.copy(), nhood_size=3, batch_size=7) == (1.0, 1.0)


def test_precision_recall_of_far_apart_sets_is_zero():
    rng = np.random.RandomState(6)
    assert precision_recall(rng.normal(size=[40, 3]), rng.normal(loc=100, size=[40, 3]), nhood_size=3) == (0.0, 0.0)


def test_generator_with_half_its_samples_off_the_data_has_precision_half_and_full_recall():
    rng = np.random.RandomState(7)
    real = rng.normal(size=[60, 2])
    gen = np.concatenate([real + 1e-3, rng.normal(loc=100, size=[60, 2])])
    precision, recall = precision_recall(real, gen, nhood_size=3, batch_size=16)
    assert precision == pytest.approx(0.5) and recall == 1.0


def test_k_nearest_neighbour_radius_uses_the_kth_other_point():
    # Real points 0, 1, 3, 7 have nearest-other-point radii 1, 1, 2, 4. Probe -1.5 is 1.5 from 0 (outside),
    # 5.5 is 1.5 from 7 (inside its radius 4), 11.5 is 4.5 from 7 (outside): precision 1/3.
    real = np.array([[0.0], [1.0], [3.0], [7.0]])
    probes = np.array([[-1.5], [5.5], [11.5]])
    precision, _recall = precision_recall(real, np.concatenate([probes, probes]), nhood_size=1)
    assert precision == pytest.approx(1 / 3)

#----------------------------------------------------------------------------
# Inception Score


def test_inception_score_of_uniform_predictions_is_one():
    mean, std = inception_score(np.full([100, 10], 0.1), num_splits=10)
    assert mean == pytest.approx(1.0) and std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_of_confident_evenly_spread_predictions_is_number_of_classes():
    probs = np.eye(8)[np.arange(160) % 8]
    mean, std = inception_score(probs, num_splits=10)
    assert mean == pytest.approx(8.0) and std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_splits_are_scored_separately():
    # First half: all class 0 (score 1 per split); second half: classes alternate (score 2 per split).
    probs = np.concatenate([np.eye(2)[np.zeros(20, dtype=int)], np.eye(2)[np.arange(20) % 2]])
    mean, std = inception_score(probs, num_splits=2)
    assert mean == pytest.approx(1.5) and std == pytest.approx(0.5)

#----------------------------------------------------------------------------
# Perceptual path length


def test_slerp_keeps_unit_norm_and_moves_angle_linearly():
    a, b = torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 3.0, 0.0]])
    for t in (0.0, 0.25, 0.5, 1.0):
        out = slerp(a, b, torch.tensor([[t]]))
        assert out.norm().item() == pytest.approx(1.0)
        assert torch.allclose(out, torch.tensor([[np.cos(t * np.pi / 2), np.sin(t * np.pi / 2), 0.0]], dtype=torch.float32), atol=1e-6)


def test_ppl_trimmed_mean_drops_the_outer_percentiles():
    dist = np.concatenate([np.full(298, 2.0), [1e9, -1e9]])  # 1st/99th percentiles of 300 are inner points
    assert trimmed_mean(dist) == pytest.approx(2.0)


def test_ppl_face_crop_keeps_the_central_face_region_and_scales_to_0_255():
    img = torch.linspace(-1, 1, 16).reshape(1, 1, 1, 16).repeat(1, 1, 16, 1)
    out = images_for_lpips(img, img_resolution=16, crop=True)
    assert list(out.shape) == [1, 3, 8, 8]  # rows 6..14, columns 4..12; grey repeated to 3 channels
    assert torch.allclose(out[0, 0, 0], (img[0, 0, 0, 4:12] + 1) * 127.5)


def _brute_force_coverage(manifold, probes, k):
    dist = np.linalg.norm(manifold[:, None] - manifold[None], axis=2)
    radii = np.sort(dist, axis=1)[:, k]
    return np.mean([np.any(np.linalg.norm(manifold - p, axis=1) <= radii) for p in probes])


def test_precision_recall_in_small_tiles_equals_brute_force():
    rng = np.random.RandomState(8)
    real, gen = rng.normal(size=[37, 4]), rng.normal(loc=0.8, size=[29, 4])
    precision, recall = precision_recall(real, gen, nhood_size=3, batch_size=5)
    assert 0 < precision < 1 and 0 < recall < 1
    assert precision == pytest.approx(_brute_force_coverage(real, gen, 3))
    assert recall == pytest.approx(_brute_force_coverage(gen, real, 3))
