"""Tests for dataset_tool.py bad input: one-line errors, non-zero exit, nothing left behind, nothing overwritten."""

import errno
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from tests import data_helpers as dh
from tests.safety_helpers import run_with_full_disk
from tests import limits

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def source(tmp_path):
    """A folder of four good 8x8 RGB images."""
    folder = tmp_path / 'src'
    dh.make_image_folder(str(folder), count=4, labels=[0, 1, 0, 1])
    return folder


def corrupt(path, keep_bytes=40):
    with open(path, 'r+b') as f:
        f.truncate(keep_bytes)


@pytest.mark.parametrize('dest_name', ['out', 'out.zip'])
def test_corrupt_image_stops_with_its_name_and_leaves_no_output(tmp_path, source, dest_name):
    corrupt(source / 'img2.png')
    before = dh.listing(str(tmp_path))
    result = dh.run_tool('--source', source, '--dest', tmp_path / dest_name)
    dh.assert_clean_failure(result, f'cannot read image {source / "img2.png"}: not a readable image', '--skip-bad')
    assert dh.listing(str(tmp_path)) == before  # No dest, no temporary files.


def test_file_that_is_not_an_image_is_reported_like_a_corrupt_one(tmp_path, source):
    (source / 'img1.png').write_bytes(b'this is text, not a PNG')
    result = dh.run_tool('--source', source, '--dest', tmp_path / 'out')
    dh.assert_clean_failure(result, 'img1.png', 'not a readable image')
    assert not (tmp_path / 'out').exists()


def test_skip_bad_skips_and_counts_unreadable_images(tmp_path, source):
    corrupt(source / 'img1.png')
    (source / 'img3.png').write_bytes(b'garbage')
    result = dh.run_tool('--source', source, '--dest', tmp_path / 'out', '--skip-bad')
    assert result.exit_code == 0, result.output
    assert 'Wrote 2 images' in result.output and 'skipped: 2 unreadable' in result.output
    assert [label for _name, label in dh.read_labels(str(tmp_path / 'out'))] == [0, 0]  # img0 and img2.


def test_existing_nonempty_dest_folder_is_never_overwritten(tmp_path, source):
    dest = tmp_path / 'out'
    dest.mkdir()
    (dest / 'precious.txt').write_text('keep me')
    result = dh.run_tool('--source', source, '--dest', dest)
    dh.assert_clean_failure(result, f'--dest {dest} already exists and is not empty', '--overwrite')
    assert dh.listing(str(dest)) == ['precious.txt'] and (dest / 'precious.txt').read_text() == 'keep me'


def test_existing_dest_zip_is_never_overwritten(tmp_path, source):
    dest = tmp_path / 'out.zip'
    dest.write_bytes(b'previous archive')
    result = dh.run_tool('--source', source, '--dest', dest)
    dh.assert_clean_failure(result, 'already exists and is not empty')
    assert dest.read_bytes() == b'previous archive'


def test_empty_existing_dest_folder_is_used(tmp_path, source):
    (tmp_path / 'out').mkdir()
    result = dh.run_tool('--source', source, '--dest', tmp_path / 'out')
    assert result.exit_code == 0, result.output
    assert len(dh.read_png_tree(str(tmp_path / 'out'))) == 4


@pytest.mark.parametrize('dest_name', ['out', 'out.zip'])
def test_overwrite_replaces_dest_after_success(tmp_path, source, dest_name):
    dest = str(tmp_path / dest_name)
    assert dh.run_tool('--source', source, '--dest', dest, '--max-images=1').exit_code == 0
    result = dh.run_tool('--source', source, '--dest', dest, '--overwrite')
    assert result.exit_code == 0, result.output
    assert len(dh.read_png_tree(dest)) == 4
    assert sorted(os.listdir(tmp_path)) == sorted(['src', dest_name])  # No leftover temporary or old copies.


@pytest.mark.parametrize('dest_name', ['out', 'out.zip'])
def test_failed_conversion_with_overwrite_keeps_the_previous_dataset(tmp_path, source, dest_name):
    dest = str(tmp_path / dest_name)
    assert dh.run_tool('--source', source, '--dest', dest, '--max-images=1').exit_code == 0
    previous = dh.read_png_tree(dest)
    corrupt(source / 'img3.png')
    result = dh.run_tool('--source', source, '--dest', dest, '--overwrite')
    dh.assert_clean_failure(result, 'img3.png')
    assert list(dh.read_png_tree(dest)) == list(previous)
    assert sorted(os.listdir(tmp_path)) == sorted(['src', dest_name])


def test_failure_removes_the_parent_folders_it_created(tmp_path, source):
    corrupt(source / 'img0.png')
    result = dh.run_tool('--source', source, '--dest', tmp_path / 'new' / 'deeper' / 'out.zip')
    dh.assert_clean_failure(result, 'img0.png')
    assert not (tmp_path / 'new').exists()


def test_mixed_sizes_stop_naming_the_odd_image(tmp_path, source):
    (source / 'dataset.json').unlink()  # img9 has no label.
    dh.save_image(str(source / 'img9.png'), dh.pattern(16, 16, 3, 9))
    result = dh.run_tool('--source', source, '--dest', tmp_path / 'out')
    dh.assert_clean_failure(result, 'img9.png is 16x16 but earlier images are 8x8', '--width and --height')
    assert not (tmp_path / 'out').exists()


def test_non_square_images_need_a_transform(tmp_path):
    dh.save_image(str(tmp_path / 'src' / 'a.png'), dh.pattern(8, 16, 3, 0))
    result = dh.run_tool('--source', tmp_path / 'src', '--dest', tmp_path / 'out')
    dh.assert_clean_failure(result, 'a.png is 16x8; images must be square with a power-of-two side', '--transform=center-crop')


@pytest.mark.parametrize('flags, message', [
    (['--width=24'], '--width/--height must be equal and a power of two'),
    (['--width=16', '--height=2'], '--width=16 --height=2: images must be square with a power-of-two side'),
    (['--transform=center-crop-wide', '--width=16'], 'center-crop-wide needs both --width and --height'),
    (['--transform=center-crop-wide', '--width=16', '--height=32'], '--height <= --width'),
])
def test_impossible_output_sizes_are_rejected_before_any_work(tmp_path, source, flags, message):
    result = dh.run_tool('--source', source, '--dest', tmp_path / 'out', *flags)
    dh.assert_clean_failure(result, message)
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('make_source, message', [
    (lambda p: str(p / 'missing'), 'does not exist; accepted: a folder of images'),
    (lambda p: (p / 'x.bin').write_bytes(b'\0' * 10) and str(p / 'x.bin'), 'x.bin is not a recognised file; accepted:'),
    (lambda p: (p / 'bad.zip').write_bytes(b'not a zip') and str(p / 'bad.zip'), 'bad.zip is not a readable zip archive'),
    (lambda p: (p / 'empty').mkdir() or str(p / 'empty'), 'holds no images (accepted extensions: .png'),
    (lambda p: 'builtin:faces', 'builtin:faces is unknown; accepted: builtin:digits'),
])
def test_unusable_sources_get_a_one_line_error(tmp_path, make_source, message):
    result = dh.run_tool('--source', make_source(tmp_path), '--dest', tmp_path / 'out')
    dh.assert_clean_failure(result, message)
    assert not (tmp_path / 'out').exists()


def test_broken_source_dataset_json_is_named(tmp_path, source):
    (source / 'dataset.json').write_text('{"labels": [')
    result = dh.run_tool('--source', source, '--dest', tmp_path / 'out')
    dh.assert_clean_failure(result, 'dataset.json is not a valid dataset.json')


def test_truncated_mnist_file_is_named(tmp_path):
    dh.make_mnist(str(tmp_path / 'm'), count=3, gz=False)
    corrupt(tmp_path / 'm' / 'train-images-idx3-ubyte', keep_bytes=100)
    result = dh.run_tool('--source', tmp_path / 'm', '--dest', tmp_path / 'out')
    dh.assert_clean_failure(result, 'train-images-idx3-ubyte is truncated')


def test_tarball_without_cifar_batches_is_refused(tmp_path):
    import tarfile
    with tarfile.open(tmp_path / 'other.tar.gz', 'w:gz') as tar:
        tar.add(__file__, arcname='readme.txt')
    result = dh.run_tool('--source', tmp_path / 'other.tar.gz', '--dest', tmp_path / 'out')
    dh.assert_clean_failure(result, 'has no data_batch_N members', 'CIFAR-10 python tarball')


@pytest.mark.parametrize('dest_of', [lambda src: src, lambda src: src / 'inside', lambda src: src.parent])
def test_dest_overlapping_the_source_is_refused_even_with_overwrite(source, dest_of):
    before = dh.listing(str(source))
    result = dh.run_tool('--source', source, '--dest', dest_of(source), '--overwrite')
    dh.assert_clean_failure(result, 'overlaps --source')
    assert dh.listing(str(source)) == before


def test_dest_zip_path_that_is_a_folder_is_refused(tmp_path, source):
    (tmp_path / 'odd.zip').mkdir()
    result = dh.run_tool('--source', source, '--dest', tmp_path / 'odd.zip', '--overwrite')
    dh.assert_clean_failure(result, 'is an existing folder')


@pytest.mark.parametrize('dest_name, message', [
    ('notes.txt', 'notes.txt is an existing file; give a folder path or a path ending in .zip'),
    ('notes.txt/', 'notes.txt is a file, not a folder'),
    ('notes.txt/out', 'notes.txt/out lies under'),
    ('notes.txt/out.zip', 'notes.txt is a file, not a folder'),
])
def test_dest_that_is_or_lies_under_a_file_is_refused(tmp_path, source, dest_name, message):
    (tmp_path / 'notes.txt').write_text('keep me')
    before = dh.listing(str(tmp_path))
    result = dh.run_tool('--source', source, '--dest', str(tmp_path) + os.sep + dest_name, '--overwrite')
    dh.assert_clean_failure(result, message)
    assert dh.listing(str(tmp_path)) == before and (tmp_path / 'notes.txt').read_text() == 'keep me'


def test_overwrite_refuses_a_folder_that_is_not_a_dataset(tmp_path, source):
    dest = tmp_path / 'photos'
    dh.make_image_folder(str(dest), count=1)
    result = dh.run_tool('--source', source, '--dest', dest, '--overwrite')
    dh.assert_clean_failure(result, 'holds img0.png, which is not part of a dataset', '--overwrite replaces only a dataset folder')
    assert dh.listing(str(dest)) == ['img0.png']


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith('Error:')]


def test_full_disk_while_writing_a_zip_keeps_the_previous_zip(tmp_path, source):
    dest = tmp_path / 'out.zip'
    dest.write_bytes(b'previous archive')
    before = dh.listing(str(tmp_path))
    proc = run_with_full_disk(['dataset_tool.py', '--source', str(source), '--dest', str(dest), '--overwrite'], cwd=REPO_ROOT)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    [error] = error_lines(proc.stderr)
    assert f'cannot write {dest}: the disk is full' in error and f'--dest {dest} is unchanged' in error
    assert dest.read_bytes() == b'previous archive' and dh.listing(str(tmp_path)) == before  # No temporary file.


def test_full_disk_midway_through_a_folder_keeps_the_previous_dataset(tmp_path, source):
    dest = tmp_path / 'out'
    assert dh.run_tool('--source', source, '--dest', dest, '--max-images=1').exit_code == 0
    before = {name: pixels.tolist() for name, pixels in dh.read_png_tree(str(dest)).items()}
    listing = dh.listing(str(tmp_path))
    proc = run_with_full_disk(['dataset_tool.py', '--source', str(source), '--dest', str(dest), '--overwrite'],
                              cwd=REPO_ROOT, allowed_files=2)  # The third image hits the full disk.
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    [error] = error_lines(proc.stderr)
    assert 'img00000002.png: the disk is full' in error and f'--dest {dest} is unchanged' in error
    assert dh.listing(str(tmp_path)) == listing  # The partial dataset is gone, nothing else was touched.
    assert {name: pixels.tolist() for name, pixels in dh.read_png_tree(str(dest)).items()} == before


@pytest.mark.parametrize('dest_name', ['out', 'out.zip'])
def test_read_only_destination_is_one_line_and_leaves_nothing(tmp_path, source, monkeypatch, dest_name):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))
    monkeypatch.setattr(tempfile, 'mkstemp', read_only)
    before = dh.listing(str(tmp_path))
    result = dh.run_tool('--source', source, '--dest', tmp_path / 'new' / dest_name)
    dh.assert_clean_failure(result, 'read-only file system; choose a writable place', 'is unchanged')
    assert dh.listing(str(tmp_path)) == before


def test_command_line_error_exits_nonzero_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(REPO_ROOT, 'dataset_tool.py'), '--source', str(tmp_path / 'nope'),
                           '--dest', str(tmp_path / 'out')], capture_output=True, text=True, cwd=str(tmp_path), timeout=limits.seconds(120))
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f'Error: --source {tmp_path / "nope"} does not exist; accepted: '
                                                'a folder of images, a .zip of images, the CIFAR-10 python tarball, MNIST '
                                                '*-images-idx3-ubyte[.gz] (or a folder holding them), an LSUN lmdb folder, or builtin:digits']
    assert os.listdir(tmp_path) == []


def test_progress_goes_to_stderr_and_summary_to_stdout(tmp_path, source):
    result = dh.run_tool('--source', source, '--dest', tmp_path / 'out')
    assert result.exit_code == 0
    assert 'Converting' in result.stderr and 'Converting' not in result.stdout
    assert result.stdout.splitlines()[0] == f'Wrote 4 images from image folder to {tmp_path / "out"}'
    assert 'resolution: 8x8, channels: 3 (RGB)' in result.stdout and 'labels: 2 classes' in result.stdout
    np.testing.assert_array_equal(dh.read_png_tree(str(tmp_path / 'out'))['00000/img00000001.png'], dh.pattern(8, 8, 3, 1))
