"""A generator that reproduces the dataset scores as the dataset itself: FID and KID 0, precision and recall 1. The
generator path and the dataset path hand the detector the same tensor for the same picture (range, uint8 rounding,
grayscale channels)."""

import os

import numpy as np
import PIL.Image
import pytest
import torch

from metrics import detectors, frechet_inception_distance, kernel_inception_distance, metric_utils, precision_recall
from tests import metrics_helpers as helpers
from tests.reference.record_metrics import ReplayGenerator
from training.dataset import ImageFolderDataset

NUM_IMAGES = 24


def _write_images(folder, channels):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.RandomState(3)
    for i in range(NUM_IMAGES):
        shape = [helpers.RESOLUTION, helpers.RESOLUTION] + ([3] if channels == 3 else [])
        pixels = rng.randint(0, 256, size=shape).astype(np.uint8)  # Every value 0..255 occurs, 0 and 255 included.
        PIL.Image.fromarray(pixels, mode='RGB' if channels == 3 else 'L').save(os.path.join(folder, f'img{i:04d}.png'))
    return helpers.dataset_kwargs_for(folder)


def _dataset_images(dataset_kwargs):
    dataset = ImageFolderDataset(**{k: v for k, v in dataset_kwargs.items() if k != 'class_name'})
    try:
        return np.stack([dataset[i][0] for i in range(len(dataset))])
    finally:
        dataset.close()


@pytest.fixture(params=[3, 1], ids=['rgb', 'grayscale'])
def replay(request, tmp_path):
    dataset_kwargs = _write_images(tmp_path / 'data', request.param)
    G = ReplayGenerator(_dataset_images(dataset_kwargs))
    opts = metric_utils.MetricOptions(G=G, dataset_kwargs=dataset_kwargs, device='cpu', cache=False,
                                      detector_dir=helpers.write_detector_dir(tmp_path / 'detectors'))
    return opts


def test_every_uint8_value_survives_the_generator_path():
    values = torch.arange(256, dtype=torch.uint8).reshape([1, 1, 16, 16])
    generated = values.to(torch.float32) / 127.5 - 1  # What a generator trained on these pixels outputs.
    assert torch.equal(metric_utils.generator_images_to_uint8(generated), values)


def test_generator_outputs_between_pixel_values_round_to_the_nearest():
    """[-1, 1] maps onto [0, 255] as the reals were scaled (x = u / 127.5 - 1), rounding half up as stylegan2-ada does."""
    pixel = torch.arange(255, dtype=torch.float32).repeat_interleave(4)
    fraction = torch.tensor([0.1, 0.4, 0.6, 0.9]).repeat(255)
    generated = ((pixel + fraction) / 127.5 - 1).reshape([1, 1, 30, 34])
    expected = (pixel + (fraction > 0.5).float()).to(torch.uint8).reshape([1, 1, 30, 34])
    assert torch.equal(metric_utils.generator_images_to_uint8(generated), expected)
    assert torch.equal(metric_utils.generator_images_to_uint8(torch.tensor([-1.5, 1.5])), torch.tensor([0, 255],
                                                                                                       dtype=torch.uint8))


@pytest.mark.parametrize('channels', [3, 1])
def test_both_paths_hand_the_detector_the_same_tensor(tmp_path, channels):
    dataset_kwargs = _write_images(tmp_path / 'data', channels)
    images = _dataset_images(dataset_kwargs)
    from_dataset = metric_utils.to_detector_images(torch.as_tensor(images))
    from_generator = metric_utils.to_detector_images(metric_utils.generator_images_to_uint8(
        ReplayGenerator(images)(torch.zeros([NUM_IMAGES, 4]), None)))
    assert from_dataset.dtype == torch.uint8 and from_dataset.shape[1] == 3
    assert torch.equal(from_generator, from_dataset)


def test_generated_features_equal_the_datasets_row_for_row(replay):
    real, generated = metric_utils.compute_all_features(replay, detector=detectors.INCEPTION,
                                                        detector_kwargs=dict(return_features=True),
                                                        max_real=None, num_gen=NUM_IMAGES)
    assert real.shape == generated.shape == (NUM_IMAGES, helpers.NUM_FEATURES)
    np.testing.assert_array_equal(generated, real)


def test_fid_of_the_dataset_against_itself_is_zero(replay):
    same = frechet_inception_distance.compute_fid(replay, max_real=None, num_gen=NUM_IMAGES)
    replay.G.images = replay.G.images * 0.5  # Other pictures: half the contrast.
    other = frechet_inception_distance.compute_fid(replay, max_real=None, num_gen=NUM_IMAGES)
    assert abs(same) < 1e-6 * other  # sqrtm's rounding only.


def test_kid_of_the_dataset_against_itself_is_the_unbiased_estimate_for_one_set(replay):
    """KID's unbiased MMD estimate of a set against itself is 2/m ((S - T) / (m - 1) - S / m), S the kernel sum, T its
    trace: slightly below 0, exactly what identical sets give."""
    kid = kernel_inception_distance.compute_kid(replay, max_real=None, num_gen=NUM_IMAGES, num_subsets=4,
                                                max_subset_size=NUM_IMAGES)
    real, _ = metric_utils.compute_all_features(replay, detector=detectors.INCEPTION,
                                                detector_kwargs=dict(return_features=True), max_real=None,
                                                num_gen=NUM_IMAGES)
    real = real.astype(np.float64)
    kernel = (real @ real.T / real.shape[1] + 1) ** 3
    m, total, trace = len(real), kernel.sum(), np.trace(kernel)
    assert kid == pytest.approx(2 * ((total - trace) / (m - 1) - total / m) / m, rel=1e-4)


def test_precision_and_recall_of_the_dataset_against_itself_are_one(replay):
    precision, recall = precision_recall.compute_pr(replay, max_real=None, num_gen=NUM_IMAGES, nhood_size=3)
    assert precision == 1 and recall == 1
