"""Tests for training.dataset: items, labels, x-flip, max_size, worker safety and validation errors."""

import json
import os
import pickle

import numpy as np
import pytest
import torch

from tests import data_helpers as dh
from training.dataset import DatasetError, ImageFolderDataset


@pytest.fixture
def labelled_folder(tmp_path):
    folder = str(tmp_path / 'set')
    images = dh.make_image_folder(folder, count=6, size=8, channels=3, labels=[0, 2, 1, 2, 0, 1])
    return folder, images


def test_folder_and_zip_give_identical_chw_uint8_items(labelled_folder, tmp_path):
    folder, images = labelled_folder
    zipped = dh.zip_folder(folder, str(tmp_path / 'set.zip'))
    for ds in (ImageFolderDataset(folder), ImageFolderDataset(zipped)):
        assert len(ds) == 6 and ds.image_shape == [3, 8, 8] and ds.resolution == 8 and ds.num_channels == 3
        assert ds.name == 'set'
        image, label = ds[2]
        assert image.dtype == np.uint8 and label.dtype == np.float32 and label.shape == (0,)
        np.testing.assert_array_equal(image, images[2].transpose(2, 0, 1))


def test_grayscale_images_have_one_channel(tmp_path):
    folder = str(tmp_path / 'gray')
    images = dh.make_image_folder(folder, count=2, channels=1)
    ds = ImageFolderDataset(folder)
    assert ds.image_shape == [1, 8, 8]
    np.testing.assert_array_equal(ds[1][0][0], images[1])


def test_integer_labels_become_onehot_float32(labelled_folder):
    ds = ImageFolderDataset(labelled_folder[0], use_labels=True)
    assert ds.has_labels and ds.has_onehot_labels and ds.label_shape == [3] and ds.label_dim == 3
    np.testing.assert_array_equal(ds[1][1], np.array([0, 0, 1], np.float32))
    np.testing.assert_array_equal(ds.get_label(4), np.array([1, 0, 0], np.float32))
    assert ds.get_details(1).raw_label == 2


def test_float_vector_labels_are_returned_as_given(tmp_path):
    folder = str(tmp_path / 'vec')
    dh.make_image_folder(folder, count=3, labels=[[0.5, -1.0], [1.0, 2.0], [0.0, 0.25]])
    ds = ImageFolderDataset(folder, use_labels=True)
    assert not ds.has_onehot_labels and ds.label_shape == [2]
    np.testing.assert_array_equal(ds[1][1], np.array([1.0, 2.0], np.float32))


def test_class_names_of_dataset_json_are_read_and_checked(labelled_folder):
    folder = labelled_folder[0]
    assert ImageFolderDataset(folder, use_labels=True).class_names is None  # Optional.
    path = os.path.join(folder, 'dataset.json')
    content = json.load(open(path, encoding='utf-8'))
    for names, error in [(['a', 'b', 'c'], None), (['a', 'b', 'c', 'd'], None),
                         (['a', 'b'], '"class_names" names 2 classes, but the labels use 3'),
                         (['a', '', 'c'], '"class_names" is'), ('abc', '"class_names" is')]:
        json.dump(dict(content, class_names=names), open(path, 'w', encoding='utf-8'))
        if error is None:
            assert ImageFolderDataset(folder, use_labels=True).class_names == names
        else:  # Refused when the dataset is opened, before any training.
            with pytest.raises(DatasetError, match=error):
                ImageFolderDataset(folder, use_labels=True)


def test_labels_not_requested_gives_zero_length_labels(labelled_folder):
    ds = ImageFolderDataset(labelled_folder[0], use_labels=False)
    assert not ds.has_labels and ds.label_shape == [0] and ds.labels_available


def test_xflip_doubles_length_and_mirrors_second_half(labelled_folder):
    folder, images = labelled_folder
    ds = ImageFolderDataset(folder, use_labels=True, xflip=True)
    assert len(ds) == 12
    original, label = ds[3]
    mirrored, mirrored_label = ds[3 + 6]
    np.testing.assert_array_equal(mirrored, original[:, :, ::-1])
    assert not np.array_equal(mirrored, original)
    np.testing.assert_array_equal(label, mirrored_label)
    assert ds.get_details(9).xflip and not ds.get_details(3).xflip


def test_max_size_is_a_deterministic_random_subset(tmp_path):
    folder = str(tmp_path / 'many')
    dh.make_image_folder(folder, count=20, size=4)
    picks = lambda seed: [ImageFolderDataset(folder, max_size=5, random_seed=seed).get_details(i).raw_idx for i in range(5)]
    assert picks(0) == picks(0)
    assert picks(0) == sorted(picks(0)) and len(set(picks(0))) == 5
    assert picks(0) != list(range(5))  # A random subset, not the first five.
    assert picks(0) != picks(1)
    assert len(ImageFolderDataset(folder, max_size=5, xflip=True)) == 10
    assert len(ImageFolderDataset(folder, max_size=50)) == 20


def test_pickled_zip_dataset_drops_handle_and_reopens(labelled_folder, tmp_path):
    zipped = dh.zip_folder(labelled_folder[0], str(tmp_path / 'set.zip'))
    ds = ImageFolderDataset(zipped, use_labels=True)
    expected = ds[0][0]
    assert ds._zipfile is not None  # Opened while validating the first image.
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._zipfile is None
    np.testing.assert_array_equal(clone[0][0], expected)


def test_zip_dataset_loads_in_dataloader_worker_processes(labelled_folder, tmp_path):
    zipped = dh.zip_folder(labelled_folder[0], str(tmp_path / 'set.zip'))
    ds = ImageFolderDataset(zipped, use_labels=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)
    images = torch.cat([batch[0] for batch in loader])
    expected = np.stack([ds[i][0] for i in range(len(ds))])
    np.testing.assert_array_equal(images.numpy(), expected)

#----------------------------------------------------------------------------
# Validation errors.

def test_missing_path_names_the_path(tmp_path):
    with pytest.raises(DatasetError, match='nowhere.zip is not a folder or a .zip'):
        ImageFolderDataset(str(tmp_path / 'nowhere.zip'))


def test_folder_without_images_is_rejected(tmp_path):
    with pytest.raises(DatasetError, match='holds no images'):
        ImageFolderDataset(str(tmp_path))


def test_non_square_images_of_no_network_shape_are_rejected(tmp_path):
    """16x8 is a shape the networks take (tests/test_non_square.py); 36x8 is not (w0 = 36 / 2^k stays above 16)."""
    dh.save_image(str(tmp_path / 'd' / 'a.png'), dh.pattern(8, 36, 3, 0))
    with pytest.raises(DatasetError, match=r'a.png is 36x8; images must be square'):
        ImageFolderDataset(str(tmp_path / 'd'))


def test_non_power_of_two_images_are_rejected(tmp_path):
    dh.save_image(str(tmp_path / 'd' / 'a.png'), dh.pattern(12, 12, 3, 0))
    with pytest.raises(DatasetError, match='power-of-two'):
        ImageFolderDataset(str(tmp_path / 'd'))


def test_requested_resolution_must_match(labelled_folder):
    with pytest.raises(DatasetError, match='resolution=16 was requested'):
        ImageFolderDataset(labelled_folder[0], resolution=16)
    assert ImageFolderDataset(labelled_folder[0], resolution=8).resolution == 8


def test_rgba_images_are_rejected_with_their_channel_count(tmp_path):
    dh.save_image(str(tmp_path / 'd' / 'a.png'), dh.pattern(8, 8, 3, 0), mode='RGBA')
    with pytest.raises(DatasetError, match=r'a.png has 4 channel\(s\) \(mode RGBA\); accepted: 1 \(grayscale\) or 3'):
        ImageFolderDataset(str(tmp_path / 'd'))


def test_image_of_another_size_fails_when_loaded_naming_the_file(tmp_path):
    folder = str(tmp_path / 'd')
    dh.make_image_folder(folder, count=2)
    dh.save_image(os.path.join(folder, 'zz_big.png'), dh.pattern(16, 16, 3, 0))
    ds = ImageFolderDataset(folder)
    ds[0]
    with pytest.raises(DatasetError, match=r'zz_big.png has shape \[3, 16, 16\].*\[3, 8, 8\]'):
        ds[2]


def test_labels_requested_without_dataset_json_fail(tmp_path):
    folder = str(tmp_path / 'd')
    dh.make_image_folder(folder, count=2)
    with pytest.raises(DatasetError, match=r'labels requested but .*dataset.json is missing'):
        ImageFolderDataset(folder, use_labels=True)
    assert not ImageFolderDataset(folder).labels_available


def test_labels_requested_with_null_labels_fail(tmp_path):
    folder = str(tmp_path / 'd')
    dh.make_image_folder(folder, count=2)
    dh.write_dataset_json(folder, None)
    with pytest.raises(DatasetError, match='has "labels": null'):
        ImageFolderDataset(folder, use_labels=True)


def test_labels_must_cover_every_image(tmp_path):
    folder = str(tmp_path / 'd')
    dh.make_image_folder(folder, count=3)
    dh.write_dataset_json(folder, [['img0.png', 1], ['img2.png', 0]])
    with pytest.raises(DatasetError, match=r'no label for 1 of 3 images \(first: img1.png\)'):
        ImageFolderDataset(folder, use_labels=True)


@pytest.mark.parametrize('labels, message', [
    ([1, [0.5]], r"the label of img1.png is \[0.5\], but labels are class indices in \[0, 1000000\) \(as img0.png's, 1\)"),
    ([[0.5], 1], r"the label of img1.png is 1, but labels are lists of 1 finite numbers \(as img0.png's\)"),
    ([[0.5, 1.0], [0.5]], r'the label of img1.png is \[0.5\], but labels are lists of 2 finite numbers'),
    ([[0.5], [float('nan')]], r'the label of img1.png is \[nan\], but labels are lists of 1 finite numbers'),
    ([0, 10 ** 12], r'the label of img1.png is 1000000000000, but labels are class indices in \[0, 1000000\)'),
    ([True, 1], r'the label of img0.png is True; accepted: a class index in \[0, 1000000\) or a list of finite numbers'),
    ([[], [1.0]], r'the label of img0.png is \[\]; accepted'),
    ([-1, 0], r'the label of img0.png is -1; accepted'),
])
def test_labels_break_one_rule_and_the_first_bad_one_is_named(tmp_path, labels, message):
    folder = str(tmp_path / 'd')
    dh.make_image_folder(folder, count=2, labels=labels)
    with pytest.raises(DatasetError, match=r'dataset.json: ' + message):
        ImageFolderDataset(folder, use_labels=True)


def test_class_and_vector_labels_load(tmp_path):
    for labels, expected in (([3, 0], [[0, 0, 0, 1], [1, 0, 0, 0]]), ([[0.5, 2], [1, -1.5]], [[0.5, 2], [1, -1.5]])):
        folder = str(tmp_path / str(len(expected[0])))
        dh.make_image_folder(folder, count=2, labels=labels)
        dataset = ImageFolderDataset(folder, use_labels=True)
        assert [dataset.get_label(i).tolist() for i in range(2)] == expected


def test_corrupt_image_fails_naming_the_file(tmp_path):
    folder = str(tmp_path / 'd')
    dh.make_image_folder(folder, count=2)
    with open(os.path.join(folder, 'img1.png'), 'r+b') as f:
        f.truncate(40)
    ds = ImageFolderDataset(folder)
    with pytest.raises(DatasetError, match='cannot decode image .*img1.png'):
        ds[1]
