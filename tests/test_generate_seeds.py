"""Seed-list parsing, seed -> z, image conversion and grid layout of generate.py (no networks needed)."""

import numpy as np
import pytest
import torch

import generate


def test_seed_range_is_inclusive():
    assert generate.parse_int_list('0-3') == [0, 1, 2, 3]


def test_comma_list_keeps_order():
    assert generate.parse_int_list('9,1,5') == [9, 1, 5]


def test_ranges_and_single_seeds_mix():
    assert generate.parse_int_list('0-3,7,10-11') == [0, 1, 2, 3, 7, 10, 11]


def test_single_seed_range_of_one():
    assert generate.parse_int_list('5-5') == [5]


def test_spaces_around_items_are_accepted():
    assert generate.parse_int_list(' 1, 2 - 3 ') == [1, 2, 3]


@pytest.mark.parametrize('text, fragment', [
    ('', 'empty seed list'),
    ('abc', "'abc'"),
    ('1,,2', "''"),
    ('3-1', 'runs backwards'),
    ('-1', "'-1'"),
    ('5-', "'5-'"),
    ('1.5', "'1.5'"),
    ('4294967296', 'above the largest accepted'),
])
def test_bad_seed_lists_name_the_bad_item(text, fragment):
    with pytest.raises(ValueError) as info:
        generate.parse_int_list(text)
    message = str(info.value)
    assert fragment in message
    assert '\n' not in message


def test_largest_numpy_seed_is_accepted():
    assert generate.parse_int_list('4294967295') == [2**32 - 1]


def test_seed_latents_follow_numpy_randomstate_per_seed():
    zs = generate.zs_from_seeds([3, 1000], z_dim=8, device='cpu')
    assert zs.shape == (2, 8)
    assert torch.equal(zs[1], torch.from_numpy(np.random.RandomState(1000).randn(8)))
    assert not torch.equal(zs[0], zs[1])


def test_uint8_conversion_truncates_like_the_official_tool():
    # x*127.5+128 then truncation toward zero: -1 -> 0.5 -> 0, 0 -> 128, 1 -> 255.5 -> clamp 255.
    values = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    images = values.reshape(1, 1, 1, 7).expand(2, 3, 1, 7)  # N=2, C=3, H=1, W=7
    out = generate.to_uint8(images)
    assert out.dtype == np.uint8 and out.shape == (2, 1, 7, 3)
    assert out[0, 0, :, 0].tolist() == [0, 0, 64, 128, 191, 255, 255]


def test_seed_grid_is_near_square_and_pads_with_black():
    images = [np.full([4, 6, 3], 10 * (i + 1), dtype=np.uint8) for i in range(5)]
    grid = generate.seed_grid(images)
    assert grid.shape == (2 * 4, 3 * 6, 3)  # 5 images -> 3 columns, 2 rows
    assert (grid[4:8, 6:12] == 50).all()  # fifth image: row 1, column 1
    assert (grid[4:8, 12:18] == 0).all()  # sixth cell is empty


def test_grayscale_images_become_L_mode_pngs():
    assert generate.to_pil(np.zeros([4, 4, 1], dtype=np.uint8)).mode == 'L'
    assert generate.to_pil(np.zeros([4, 4, 3], dtype=np.uint8)).mode == 'RGB'


def test_mixing_pairs_cover_sources_and_every_mix_once():
    pairs = generate.mixing_pairs([1, 2], [2, 3])
    assert set(pairs) == {(1, 1), (2, 2), (3, 3), (1, 2), (1, 3), (2, 3)}
    assert len(pairs) == len(set(pairs))
