"""Tests for dataset_tool.py pixel formats: one channel count per dataset, --channels, 16-bit sources, the summary."""

import numpy as np
import PIL.Image
import pytest

from tests import data_helpers as dh
from training.dataset import ImageFolderDataset


@pytest.fixture
def mixed(tmp_path):
    """A folder of one grayscale, one RGB and one RGBA (half-transparent) image, in that order."""
    src = tmp_path / 'mixed'
    dh.save_image(str(src / 'a_gray.png'), dh.pattern(8, 8, 1, 1))
    dh.save_image(str(src / 'b_rgb.png'), dh.pattern(8, 8, 3, 2))
    rgba = dh.pattern(8, 8, 4, 3)
    rgba[..., 3] = 128
    dh.save_image(str(src / 'c_rgba.png'), rgba)
    return src


def converted(result):
    """The summary's 'converted:' line, without its label."""
    lines = [line for line in result.stdout.splitlines() if line.startswith('  converted: ')]
    assert len(lines) == 1, result.output
    return lines[0][len('  converted: '):]


def test_mixed_channel_counts_are_refused_naming_the_counts_and_the_odd_image(tmp_path):
    src = tmp_path / 'src'
    dh.make_image_folder(str(src), count=2)
    dh.save_image(str(src / 'img2.png'), dh.pattern(8, 8, 1, 5))
    result = dh.run_tool('--source', src, '--dest', tmp_path / 'out')
    dh.assert_clean_failure(result, 'mixes channel counts: 2 RGB (3 channels), 1 grayscale (1 channel)',
                            f'first grayscale image: {src / "img2.png"}', '--channels=1|3|4')
    assert not (tmp_path / 'out').exists()


def test_rgb_and_rgba_count_as_mixed(tmp_path, mixed):
    (mixed / 'a_gray.png').unlink()
    result = dh.run_tool('--source', mixed, '--dest', tmp_path / 'out')
    dh.assert_clean_failure(result, '1 RGB (3 channels), 1 RGBA (4 channels)', '--channels=1|3|4')


def test_channels_3_replicates_gray_and_drops_alpha(tmp_path, mixed):
    dest = str(tmp_path / 'out')
    result = dh.run_tool('--source', mixed, '--dest', dest, '--channels=3')
    assert result.exit_code == 0, result.output
    assert 'channels: 3 (RGB)' in result.stdout
    assert converted(result) == '1 grayscale images to RGB, 1 RGBA images to RGB (alpha dropped)'
    written = dh.read_png_tree(dest)
    np.testing.assert_array_equal(written['00000/img00000000.png'], np.repeat(dh.pattern(8, 8, 1, 1)[..., None], 3, axis=2))
    np.testing.assert_array_equal(written['00000/img00000002.png'], dh.pattern(8, 8, 4, 3)[..., :3])  # Colour kept as stored.
    assert ImageFolderDataset(dest).num_channels == 3


def test_channels_1_uses_itu_601_luma(tmp_path):
    src = tmp_path / 'src'
    pixels = np.zeros([4, 4, 3], np.uint8)
    pixels[0, 0] = [255, 0, 0]
    pixels[0, 1] = [0, 255, 0]
    pixels[0, 2] = [0, 0, 255]
    dh.save_image(str(src / 'a.png'), pixels)
    result = dh.run_tool('--source', src, '--dest', tmp_path / 'out', '--channels=1')
    assert result.exit_code == 0, result.output
    assert converted(result) == '1 RGB images to grayscale'
    gray = dh.read_png_tree(str(tmp_path / 'out'))['00000/img00000000.png']
    assert gray.shape == (4, 4) and list(gray[0, :3]) == [76, 150, 29]  # L = 0.299 R + 0.587 G + 0.114 B.


def test_channels_4_adds_opaque_alpha_and_keeps_existing_alpha(tmp_path, mixed):
    result = dh.run_tool('--source', mixed, '--dest', tmp_path / 'out', '--channels=4')
    assert result.exit_code == 0, result.output
    assert 'channels: 4 (RGBA)' in result.stdout
    assert converted(result) == '1 grayscale images to RGBA, 1 RGB images to RGBA'
    written = dh.read_png_tree(str(tmp_path / 'out'))
    assert written['00000/img00000000.png'][..., 3].min() == 255 and written['00000/img00000001.png'][..., 3].min() == 255
    np.testing.assert_array_equal(written['00000/img00000002.png'], np.asarray(PIL.Image.open(mixed / 'c_rgba.png')))


def test_uniform_rgba_source_becomes_rgb_as_before_and_says_so(tmp_path, mixed):
    (mixed / 'a_gray.png').unlink()
    (mixed / 'b_rgb.png').unlink()
    result = dh.run_tool('--source', mixed, '--dest', tmp_path / 'out')
    assert result.exit_code == 0, result.output
    assert 'channels: 3 (RGB)' in result.stdout and converted(result) == '1 RGBA images to RGB (alpha dropped)'


def test_palette_images_expand_through_their_palette(tmp_path):
    src = tmp_path / 'formats'
    src.mkdir()
    palette = PIL.Image.fromarray(dh.pattern(8, 8, 3, 1)).quantize(colors=8)
    palette.save(src / 'a_palette.png')
    transparent = palette.copy()
    transparent.save(src / 'b_palette_alpha.png', transparency=0)
    PIL.Image.fromarray(dh.pattern(8, 8, 3, 2)).convert('LA').save(src / 'c_gray_alpha.png')
    PIL.Image.fromarray(dh.pattern(8, 8, 3, 3)).convert('1').save(src / 'd_bilevel.png')
    result = dh.run_tool('--source', src, '--dest', tmp_path / 'out', '--channels=3')
    assert result.exit_code == 0, result.output
    assert converted(result) == '1 RGBA images to RGB (alpha dropped), 1 grayscale+alpha images to RGB (alpha dropped), 1 grayscale images to RGB'
    written = dh.read_png_tree(str(tmp_path / 'out'))
    np.testing.assert_array_equal(written['00000/img00000000.png'], np.asarray(palette.convert('RGB')))
    assert set(np.unique(written['00000/img00000003.png'])) <= {0, 255}


def test_all_grayscale_inputs_stay_single_channel_with_nothing_converted(tmp_path):
    src = tmp_path / 'gray'
    dh.save_image(str(src / 'a.png'), dh.pattern(8, 8, 1, 1))
    dh.save_image(str(src / 'b.png'), dh.pattern(8, 8, 3, 2), mode='L')
    result = dh.run_tool('--source', src, '--dest', tmp_path / 'out')
    assert result.exit_code == 0, result.output
    assert 'channels: 1 (L)' in result.stdout and converted(result) == 'nothing'
    assert ImageFolderDataset(str(tmp_path / 'out')).num_channels == 1


def test_sixteen_bit_grayscale_keeps_the_high_byte_and_counts_as_grayscale(tmp_path):
    src = tmp_path / 'deep'
    src.mkdir()
    PIL.Image.fromarray(np.full([4, 4], 0x12FF, np.uint16)).save(src / 'a.png')  # Rounding /257 would give 0x13.
    dh.save_image(str(src / 'b.png'), np.full([4, 4], 7, np.uint8))
    result = dh.run_tool('--source', src, '--dest', tmp_path / 'out')
    assert result.exit_code == 0, result.output
    assert 'channels: 1 (L)' in result.stdout and converted(result) == '1 16-bit images to 8 bits'
    assert int(dh.read_png_tree(str(tmp_path / 'out'))['00000/img00000000.png'][0, 0]) == 0x12


def test_sixteen_bit_rgb_is_reported_with_other_conversions(tmp_path):
    src = tmp_path / 'deep'
    src.mkdir()
    dh.save_png_16bit_rgb(str(src / 'a.png'), np.tile(np.array([0x1234, 0xABCD, 0xFF00], np.uint16), [4, 4, 1]))
    dh.save_image(str(src / 'b.png'), np.full([4, 4], 7, np.uint8))
    result = dh.run_tool('--source', src, '--dest', tmp_path / 'out', '--channels=3')
    assert result.exit_code == 0, result.output
    assert converted(result) == '1 16-bit images to 8 bits, 1 grayscale images to RGB'
    assert list(dh.read_png_tree(str(tmp_path / 'out'))['00000/img00000000.png'][0, 0]) == [0x12, 0xAB, 0xFF]


def test_channels_accepts_only_1_3_or_4(tmp_path, mixed):
    result = dh.run_tool('--source', mixed, '--dest', tmp_path / 'out', '--channels=2')
    dh.assert_clean_failure(result, "'--channels'", "'1', '3', '4'")
    assert not (tmp_path / 'out').exists()
