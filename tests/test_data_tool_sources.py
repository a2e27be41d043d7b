"""Tests for dataset_tool.py reading each source type, from tiny fixtures in the real formats."""

import json
import os
import sys

import numpy as np
import PIL.Image
import pytest

from tests import data_helpers as dh
from training.dataset import ImageFolderDataset


@pytest.mark.parametrize('python2', [True, False], ids=['python2-pickles', 'python3-pickles'])
def test_cifar10_tarball_converts_all_data_batches_with_labels(tmp_path, python2):
    tarball = str(tmp_path / 'cifar-10-python.tar.gz')
    images, labels = dh.make_cifar_tarball(tarball, num_batches=2, per_batch=3, side=8, python2=python2)
    dest = str(tmp_path / 'cifar.zip')
    result = dh.run_tool('--source', tarball, '--dest', dest)
    assert result.exit_code == 0, result.output
    assert 'Wrote 6 images from CIFAR-10 tarball' in result.output and 'labels: ' in result.output
    written = dh.read_png_tree(dest)
    assert sorted(written) == [f'00000/img{i:08d}.png' for i in range(6)]  # test_batch is not training data.
    for i in range(6):
        np.testing.assert_array_equal(written[f'00000/img{i:08d}.png'], images[i])
    assert dh.read_labels(dest) == [[f'00000/img{i:08d}.png', labels[i]] for i in range(6)]
    assert ImageFolderDataset(dest, use_labels=True).class_names == dh.CIFAR10_NAMES  # From batches.meta.


def test_class_names_of_a_source_dataset_json_are_kept_and_checked(tmp_path):
    source = str(tmp_path / 'src')
    dh.make_image_folder(source, count=3, labels=[0, 1, 1])
    content = {'labels': [[f'img{i}.png', label] for i, label in enumerate([0, 1, 1])]}
    with open(os.path.join(source, 'dataset.json'), 'w', encoding='utf-8') as f:
        json.dump(dict(content, class_names=['cat', 'dog']), f)
    assert dh.run_tool('--source', source, '--dest', str(tmp_path / 'ok.zip')).exit_code == 0
    assert ImageFolderDataset(str(tmp_path / "ok.zip"), use_labels=True).class_names == ["cat", "dog"]
    with open(os.path.join(source, 'dataset.json'), 'w', encoding='utf-8') as f:
        json.dump(dict(content, class_names=['cat']), f)
    result = dh.run_tool('--source', source, '--dest', str(tmp_path / 'bad.zip'))
    dh.assert_clean_failure(result, '"class_names" names 1 classes, but the labels use class 1')
    assert not os.path.exists(tmp_path / 'bad.zip')


def test_cifar10_labels_round_trip_into_the_training_dataset(tmp_path):
    tarball = str(tmp_path / 'cifar-10-python.tar.gz')
    images, labels = dh.make_cifar_tarball(tarball, num_batches=1, per_batch=4, side=4)
    dest = str(tmp_path / 'cifar.zip')
    assert dh.run_tool('--source', tarball, '--dest', dest).exit_code == 0
    ds = ImageFolderDataset(dest, use_labels=True)
    assert ds.label_dim == max(labels) + 1
    for i in range(4):
        image, onehot = ds[i]
        np.testing.assert_array_equal(image, images[i].transpose(2, 0, 1))
        assert int(np.argmax(onehot)) == labels[i] and onehot.sum() == 1


def test_cifar10_pickle_that_would_run_code_is_refused(tmp_path):
    import io
    import pickle
    import tarfile
    marker = tmp_path / 'pwned'

    class Exploit:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))
    payload = pickle.dumps({b'data': Exploit(), b'labels': []}, protocol=2)
    tarball = str(tmp_path / 'cifar-10-python.tar.gz')
    with tarfile.open(tarball, 'w:gz') as tar:
        info = tarfile.TarInfo('cifar-10-batches-py/data_batch_1')
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    result = dh.run_tool('--source', tarball, '--dest', tmp_path / 'out.zip')
    dh.assert_clean_failure(result, 'data_batch_1 is not a CIFAR-10 batch', 'refusing to load')
    assert not marker.exists() and not (tmp_path / 'out.zip').exists()


@pytest.mark.parametrize('gz', [True, False], ids=['gzipped', 'plain'])
def test_mnist_idx_folder_converts_padded_to_32_with_labels(tmp_path, gz):
    images, labels = dh.make_mnist(str(tmp_path / 'mnist'), count=5, gz=gz)
    dest = str(tmp_path / 'mnist-out')
    result = dh.run_tool('--source', tmp_path / 'mnist', '--dest', dest)
    assert result.exit_code == 0, result.output
    assert 'resolution: 32x32, channels: 1 (L)' in result.output
    written = dh.read_png_tree(dest)
    first = written['00000/img00000000.png']
    assert first.shape == (32, 32)
    np.testing.assert_array_equal(first[2:30, 2:30], images[0])
    assert first[:2].sum() == 0 and first[:, 30:].sum() == 0
    assert [label for _name, label in dh.read_labels(dest)] == labels


def test_mnist_images_file_can_be_given_directly(tmp_path):
    dh.make_mnist(str(tmp_path / 'm'), count=3, gz=True, prefix='t10k')
    result = dh.run_tool('--source', tmp_path / 'm' / 't10k-images-idx3-ubyte.gz', '--dest', tmp_path / 'o.zip')
    assert result.exit_code == 0, result.output
    assert 'Wrote 3 images from MNIST idx files' in result.output and 'labels: ' in result.output


def test_image_folder_is_read_recursively_with_dataset_json_labels(tmp_path):
    src = tmp_path / 'photos'
    a = dh.save_image(str(src / 'cats' / 'a.png'), dh.pattern(8, 8, 3, 1))
    dh.save_image(str(src / 'dogs' / 'b.jpg'), dh.pattern(8, 8, 3, 2), fmt='JPEG')
    (src / 'notes.txt').write_text('not an image')
    dh.write_dataset_json(str(src), [['cats/a.png', 3], ['dogs/b.jpg', 5]])
    dest = str(tmp_path / 'out')
    result = dh.run_tool('--source', src, '--dest', dest)
    assert result.exit_code == 0, result.output
    assert 'Wrote 2 images' in result.output and 'labels: 2 classes' in result.output
    assert dh.read_labels(dest) == [['00000/img00000000.png', 3], ['00000/img00000001.png', 5]]
    np.testing.assert_array_equal(dh.read_png_tree(dest)['00000/img00000000.png'], np.asarray(PIL.Image.open(a)))


def test_zip_source_converts_with_its_labels(tmp_path):
    dh.make_image_folder(str(tmp_path / 'src'), count=3, labels=[[0.5, 1.0], [2.0, 3.0], [4.0, 5.0]])
    zipped = dh.zip_folder(str(tmp_path / 'src'), str(tmp_path / 'src.zip'))
    dest = str(tmp_path / 'out.zip')
    result = dh.run_tool('--source', zipped, '--dest', dest)
    assert result.exit_code == 0, result.output
    assert 'labels: 2-dim vectors' in result.output
    ds = ImageFolderDataset(dest, use_labels=True)
    np.testing.assert_array_equal(ds[1][1], np.array([2.0, 3.0], np.float32))


def test_partially_labelled_source_is_refused_naming_the_first_unlabelled_image(tmp_path):
    dh.make_image_folder(str(tmp_path / 'src'), count=3)
    dh.write_dataset_json(str(tmp_path / 'src'), [['img0.png', 1]])
    result = dh.run_tool('--source', tmp_path / 'src', '--dest', tmp_path / 'out')
    dh.assert_clean_failure(result, 'dataset.json 2 of 3 images have no label (first: img1.png)', 'remove it to convert without labels')
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('zipped', [False, True], ids=['folder', 'zip'])
def test_dataset_json_naming_missing_files_is_refused_with_counts(tmp_path, zipped):
    dh.make_image_folder(str(tmp_path / 'src'), count=3)
    dh.write_dataset_json(str(tmp_path / 'src'), [['img0.png', 0], ['img1.png', 1], ['gone.png', 2], ['lost.png', 3]])
    source = dh.zip_folder(str(tmp_path / 'src'), str(tmp_path / 'src.zip')) if zipped else str(tmp_path / 'src')
    result = dh.run_tool('--source', source, '--dest', tmp_path / 'out')
    dh.assert_clean_failure(result, f'labels 2 files that are not images in --source {source} (first: gone.png)',
                            '1 of 3 images have no label (first: img2.png)')
    assert not (tmp_path / 'out').exists()


def test_center_crop_and_resize_make_square_power_of_two_images(tmp_path):
    src = tmp_path / 'wide'
    dh.save_image(str(src / 'a.png'), dh.pattern(12, 20, 3, 1))
    result = dh.run_tool('--source', src, '--dest', tmp_path / 'out', '--transform=center-crop', '--width=8', '--resize-filter=box')
    assert result.exit_code == 0, result.output
    assert 'resolution: 8x8' in result.output


def test_center_crop_wide_letterboxes_onto_a_square_canvas(tmp_path):
    src = tmp_path / 'wide'
    dh.save_image(str(src / 'a.png'), np.full([12, 16, 3], 200, np.uint8))
    dh.save_image(str(src / 'b_tiny.png'), np.full([4, 4, 3], 200, np.uint8))
    result = dh.run_tool('--source', src, '--dest', tmp_path / 'out', '--transform=center-crop-wide', '--width=8', '--height=4')
    assert result.exit_code == 0, result.output
    assert '1 too small for the crop' in result.output
    canvas = dh.read_png_tree(str(tmp_path / 'out'))['00000/img00000000.png']
    assert canvas.shape == (8, 8, 3)
    assert canvas[:2].max() == 0 and canvas[6:].max() == 0 and canvas[2:6].min() == 200


def test_max_images_limits_the_output(tmp_path):
    dh.make_image_folder(str(tmp_path / 'src'), count=5, labels=[0, 1, 2, 3, 4])
    result = dh.run_tool('--source', tmp_path / 'src', '--dest', tmp_path / 'out', '--max-images=2')
    assert result.exit_code == 0, result.output
    assert len(dh.read_png_tree(str(tmp_path / 'out'))) == 2 and len(dh.read_labels(str(tmp_path / 'out'))) == 2


def test_lmdb_source_without_the_package_names_the_install(tmp_path, monkeypatch):
    (tmp_path / 'bedroom_lmdb').mkdir()
    (tmp_path / 'bedroom_lmdb' / 'data.mdb').write_bytes(b'')
    monkeypatch.setitem(sys.modules, 'lmdb', None)  # Makes `import lmdb` fail even where it is installed.
    result = dh.run_tool('--source', tmp_path / 'bedroom_lmdb', '--dest', tmp_path / 'out.zip')
    dh.assert_clean_failure(result, 'bedroom_lmdb is an LMDB folder (LSUN)', 'pip install lmdb')
    assert not (tmp_path / 'out.zip').exists()


def test_lmdb_source_converts_encoded_values_pixel_for_pixel(tmp_path):
    import io
    import lmdb  # The test extra installs it: LSUN is three of the paper's datasets.
    folder = str(tmp_path / 'cat_lmdb')
    env = lmdb.open(folder, map_size=1 << 22)
    with env.begin(write=True) as txn:
        for i in range(3):
            buffer = io.BytesIO()
            PIL.Image.fromarray(dh.pattern(8, 8, 3, i)).save(buffer, format='PNG')
            txn.put(f'key{i}'.encode(), buffer.getvalue())
    env.close()
    result = dh.run_tool('--source', folder, '--dest', tmp_path / 'out.zip')
    assert result.exit_code == 0, result.output
    assert 'Wrote 3 images from LSUN lmdb folder' in result.output
    dataset = ImageFolderDataset(str(tmp_path / 'out.zip'))
    try:
        assert len(dataset) == 3
        for i in range(3):  # Keys are read in order; PNG is lossless, so every pixel must survive.
            np.testing.assert_array_equal(dataset[i][0], dh.pattern(8, 8, 3, i).transpose(2, 0, 1))
    finally:
        dataset.close()


@pytest.mark.slow
def test_builtin_digits_writes_1797_labelled_32px_rgb_images(tmp_path):
    pytest.importorskip('sklearn')
    dest = str(tmp_path / 'digits.zip')
    result = dh.run_tool('--source', 'builtin:digits', '--dest', dest)
    assert result.exit_code == 0, result.output
    ds = ImageFolderDataset(dest, use_labels=True)
    assert len(ds) == 1797 and ds.image_shape == [3, 32, 32] and ds.label_shape == [10]
    image, label = ds[0]
    assert np.array_equal(image[0], image[1]) and image.max() > 200 and image.min() == 0
    from sklearn.datasets import load_digits
    assert [int(np.argmax(ds.get_label(i))) for i in range(0, 1797, 97)] == [int(t) for t in load_digits().target[::97]]


@pytest.mark.parametrize('labels, message', [
    ([1, [0.5]], "--source labels: the label of {src}/img1.png is [0.5], but labels are class indices in [0, 1000000) "
                 "(as {src}/img0.png's, 1); every label must be one"),
    ([0, 10 ** 12], '--source labels: the label of {src}/img1.png is 1000000000000, but labels are class indices'),
    ([[0.5], [float('nan')]], '--source labels: the label of {src}/img1.png is [nan], but labels are lists of 1 finite numbers'),
    ([[0.5, 1.0], [2.0]], '--source labels: the label of {src}/img1.png is [2.0], but labels are lists of 2 finite numbers'),
    (['cat', 'dog'], "--source labels: the label of {src}/img0.png is 'cat'; accepted: a class index in [0, 1000000) or "
                     "a list of finite numbers"),
])
def test_labels_that_break_the_rule_stop_the_conversion_naming_the_first(tmp_path, labels, message):
    dh.make_image_folder(str(tmp_path / 'src'), count=2, labels=labels)
    result = dh.run_tool('--source', tmp_path / 'src', '--dest', tmp_path / 'out')
    dh.assert_clean_failure(result, message.format(src=tmp_path / 'src'))
    assert not (tmp_path / 'out').exists()
