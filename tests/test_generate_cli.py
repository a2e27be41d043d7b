"""generate.py end to end on tiny networks: seeds, truncation, grids, style mixing, projected ws, bad input."""

import os

import numpy as np
import pytest
import torch

import generate
from tests import generate_helpers as helpers


@pytest.fixture(scope='module')
def snapshot(tmp_path_factory):
    return helpers.tiny_snapshot(tmp_path_factory.mktemp('snapshot'))


@pytest.fixture(scope='module')
def conditional_snapshot(tmp_path_factory):
    folder = tmp_path_factory.mktemp('conditional')
    networks = helpers.make_networks(c_dim=4)
    return networks['G_ema'], helpers.write_snapshot(folder / 'conditional.pkl', networks)


def run(network, outdir, *args):
    return helpers.run_cli(generate.generate_images, [f'--network={network}', f'--outdir={outdir}',
                                                      '--device=cpu', *args])


def test_seed_images_match_the_official_recipe_pixel_for_pixel(snapshot, tmp_path):
    G, pkl = snapshot
    result = run(pkl, tmp_path, '--seeds=0-2,7')
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path)) == ['seed0000.png', 'seed0001.png', 'seed0002.png', 'seed0007.png']
    for seed in [0, 1, 2, 7]:
        expected = helpers.official_seed_image(G, seed)
        assert np.array_equal(helpers.read_png(tmp_path / f'seed{seed:04d}.png'), expected)


def test_same_seed_gives_identical_png_bytes(snapshot, tmp_path):
    _G, pkl = snapshot
    assert run(pkl, tmp_path / 'a', '--seeds=3,4').exit_code == 0
    assert run(pkl, tmp_path / 'b', '--seeds=4').exit_code == 0
    first, second = helpers.png_bytes(tmp_path / 'a'), helpers.png_bytes(tmp_path / 'b')
    assert first['seed0004.png'] == second['seed0004.png']
    assert first['seed0003.png'] != first['seed0004.png']


def test_batched_generation_matches_one_image_at_a_time(snapshot, tmp_path):
    _G, pkl = snapshot
    assert run(pkl, tmp_path / 'single', '--seeds=0-4').exit_code == 0
    assert run(pkl, tmp_path / 'batched', '--seeds=0-4', '--batch=3').exit_code == 0
    assert helpers.png_bytes(tmp_path / 'single') == helpers.png_bytes(tmp_path / 'batched')


def test_trunc_zero_gives_the_w_avg_image_for_every_seed(snapshot, tmp_path):
    G, pkl = snapshot
    assert run(pkl, tmp_path, '--seeds=0-2', '--trunc=0').exit_code == 0
    with torch.no_grad():
        ws = G.mapping.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
        expected = generate.to_uint8(G.synthesis(ws, noise_mode='const'))[0]
    for seed in [0, 1, 2]:
        assert np.array_equal(helpers.read_png(tmp_path / f'seed{seed:04d}.png'), expected)


def test_grid_writes_one_tiled_image(snapshot, tmp_path):
    G, pkl = snapshot
    assert run(pkl, tmp_path, '--seeds=0-4', '--grid').exit_code == 0
    assert os.listdir(tmp_path) == ['grid.png']
    grid = helpers.read_png(tmp_path / 'grid.png')
    size = G.img_resolution
    assert grid.shape == (2 * size, 3 * size, 3)
    assert np.array_equal(grid[size:, :size], helpers.official_seed_image(G, 3))


def test_existing_images_are_not_overwritten_without_flag(snapshot, tmp_path):
    _G, pkl = snapshot
    (tmp_path / 'seed0001.png').write_bytes(b'keep me')
    line = helpers.error_line(run(pkl, tmp_path, '--seeds=0-1'))
    assert 'seed0001.png exists' in line and '--overwrite' in line
    assert (tmp_path / 'seed0001.png').read_bytes() == b'keep me'
    assert run(pkl, tmp_path, '--seeds=0-1', '--overwrite').exit_code == 0
    assert (tmp_path / 'seed0001.png').read_bytes().startswith(b'\x89PNG')


def test_conditional_network_without_class_fails(conditional_snapshot, tmp_path):
    _G, pkl = conditional_snapshot
    line = helpers.error_line(run(pkl, tmp_path, '--seeds=0'))
    assert 'conditional' in line and '--class=0..3' in line


def test_class_out_of_range_fails(conditional_snapshot, tmp_path):
    _G, pkl = conditional_snapshot
    line = helpers.error_line(run(pkl, tmp_path, '--seeds=0', '--class=4'))
    assert '--class' in line and '0..3' in line


def test_class_on_unconditional_network_fails(snapshot, tmp_path):
    _G, pkl = snapshot
    line = helpers.error_line(run(pkl, tmp_path, '--seeds=0', '--class=1'))
    assert 'unconditional' in line


def test_conditional_class_selects_the_label(conditional_snapshot, tmp_path):
    G, pkl = conditional_snapshot
    assert run(pkl, tmp_path, '--seeds=5', '--class=2').exit_code == 0
    assert np.array_equal(helpers.read_png(tmp_path / 'seed0005.png'), helpers.official_seed_image(G, 5, class_idx=2))


def test_bad_seed_list_fails(snapshot, tmp_path):
    _G, pkl = snapshot
    line = helpers.error_line(run(pkl, tmp_path, '--seeds=5-2'))
    assert '--seeds' in line and 'runs backwards' in line


def test_missing_seeds_fails(snapshot, tmp_path):
    _G, pkl = snapshot
    assert '--seeds' in helpers.error_line(run(pkl, tmp_path))


def test_unreadable_network_file_fails(tmp_path):
    garbage = tmp_path / 'broken.pkl'
    garbage.write_bytes(b'this is not a network')
    line = helpers.error_line(run(garbage, tmp_path / 'out', '--seeds=0'))
    assert 'broken.pkl' in line and 'cannot read network pickle' in line


def test_missing_network_file_fails(tmp_path):
    line = helpers.error_line(run(tmp_path / 'nowhere.pkl', tmp_path / 'out', '--seeds=0'))
    assert 'nowhere.pkl: no such network file' in line


def test_projected_w_renders_one_image_per_w(snapshot, tmp_path):
    G, pkl = snapshot
    ws = torch.randn([2, G.num_ws, G.w_dim]).numpy()
    np.savez(tmp_path / 'projected_w.npz', w=ws)
    assert run(pkl, tmp_path / 'out', f'--projected-w={tmp_path / "projected_w.npz"}').exit_code == 0
    with torch.no_grad():
        expected = generate.to_uint8(G.synthesis(torch.from_numpy(ws[1:2]), noise_mode='const'))[0]
    assert sorted(os.listdir(tmp_path / 'out')) == ['proj00.png', 'proj01.png']
    assert np.array_equal(helpers.read_png(tmp_path / 'out' / 'proj01.png'), expected)


def test_projected_w_shape_mismatch_fails(snapshot, tmp_path):
    G, pkl = snapshot
    np.savez(tmp_path / 'wrong.npz', w=np.zeros([1, G.num_ws + 1, G.w_dim], dtype=np.float32))
    line = helpers.error_line(run(pkl, tmp_path / 'out', f'--projected-w={tmp_path / "wrong.npz"}'))
    assert 'wrong.npz' in line and f'[N, {G.num_ws}, {G.w_dim}]' in line


def test_projected_w_with_seeds_is_a_usage_error(snapshot, tmp_path):
    _G, pkl = snapshot
    np.savez(tmp_path / 'w.npz', w=np.zeros([1, 1, 1], dtype=np.float32))
    line = helpers.error_line(run(pkl, tmp_path / 'out', f'--projected-w={tmp_path / "w.npz"}', '--seeds=0'))
    assert '--seeds does not apply to --projected-w' in line


def test_style_mixing_grid_has_sources_on_the_edges(snapshot, tmp_path):
    G, pkl = snapshot
    result = run(pkl, tmp_path, '--rows=1,2', '--cols=3,4,5', '--styles=0-1')
    assert result.exit_code == 0, result.output
    assert os.listdir(tmp_path) == ['grid.png']
    grid = helpers.read_png(tmp_path / 'grid.png')
    size = G.img_resolution
    assert grid.shape == (3 * size, 4 * size, 3)
    assert (grid[:size, :size] == 0).all()
    assert np.array_equal(grid[:size, 2 * size:3 * size], helpers.official_seed_image(G, 4))  # top row: column seed
    assert np.array_equal(grid[2 * size:, :size], helpers.official_seed_image(G, 2))  # left column: row seed


def test_style_mixing_takes_chosen_layers_from_the_column_seed(snapshot, tmp_path):
    G, pkl = snapshot
    assert run(pkl, tmp_path, '--rows=1', '--cols=3', '--styles=0-1', '--individual').exit_code == 0
    assert sorted(os.listdir(tmp_path)) == ['1-1.png', '1-3.png', '3-3.png', 'grid.png']
    with torch.no_grad():
        w_row = G.mapping(generate.zs_from_seeds([1], G.z_dim, 'cpu'), None)
        w_col = G.mapping(generate.zs_from_seeds([3], G.z_dim, 'cpu'), None)
        w_row[:, :2] = w_col[:, :2]
        expected = generate.to_uint8(G.synthesis(w_row, noise_mode='const'))[0]
    assert np.array_equal(helpers.read_png(tmp_path / '1-3.png'), expected)
    assert not np.array_equal(expected, helpers.read_png(tmp_path / '1-1.png'))


@pytest.mark.parametrize('num_ws, coarse', [(18, [0, 1, 2, 3, 4, 5]), (8, [0, 1]), (6, [0, 1]), (2, [0])])
def test_default_styles_are_the_first_third_of_the_ws(num_ws, coarse):
    assert generate.coarse_styles(num_ws) == coarse


def test_style_mixing_without_styles_mixes_the_networks_coarse_styles(snapshot, tmp_path):
    G, pkl = snapshot
    assert run(pkl, tmp_path / 'default', '--rows=1', '--cols=3').exit_code == 0
    assert run(pkl, tmp_path / 'coarse', '--rows=1', '--cols=3', f'--styles=0-{G.num_ws // 3 - 1}').exit_code == 0
    assert run(pkl, tmp_path / 'more', '--rows=1', '--cols=3', f'--styles=0-{G.num_ws // 3}').exit_code == 0
    default = helpers.read_png(tmp_path / 'default' / 'grid.png')
    assert np.array_equal(default, helpers.read_png(tmp_path / 'coarse' / 'grid.png'))
    assert not np.array_equal(default, helpers.read_png(tmp_path / 'more' / 'grid.png'))


def test_class_all_draws_one_row_per_class_with_the_seeds_as_columns(conditional_snapshot, tmp_path):
    G, pkl = conditional_snapshot
    result = run(pkl, tmp_path / 'all', '--seeds=5,9', '--class=all')
    assert result.exit_code == 0, result.output
    grid = helpers.read_png(tmp_path / 'all' / 'grid.png')
    size = G.img_resolution
    assert grid.shape == (G.c_dim * size, 2 * size, 3)
    for class_idx in range(G.c_dim):
        assert run(pkl, tmp_path / f'c{class_idx}', '--seeds=9', f'--class={class_idx}').exit_code == 0
        single = helpers.read_png(tmp_path / f'c{class_idx}' / 'seed0009.png')
        assert np.array_equal(grid[class_idx * size:(class_idx + 1) * size, size:], single)


def test_class_all_names_the_rows_when_the_network_file_carries_class_names(conditional_snapshot, tmp_path):
    G, pkl = conditional_snapshot
    networks = helpers.make_networks(c_dim=4)
    named = helpers.write_snapshot(tmp_path / 'named.pkl', dict(networks, class_names=['cat', 'dog', 'bird', 'fish']))
    unnamed = helpers.write_snapshot(tmp_path / 'unnamed.pkl', networks)
    result = run(named, tmp_path / 'named', '--seeds=5,9', '--class=all')
    assert result.exit_code == 0, result.output
    assert 'named on the left (cat, dog, bird, fish)' in result.output
    assert run(unnamed, tmp_path / 'unnamed', '--seeds=5,9', '--class=all').exit_code == 0
    plain = helpers.read_png(tmp_path / 'unnamed' / 'grid.png')
    grid = helpers.read_png(tmp_path / 'named' / 'grid.png')
    strip = grid.shape[1] - plain.shape[1]
    assert grid.shape[0] == plain.shape[0] and strip > 10       # A strip of names on the left...
    assert np.array_equal(grid[:, strip:], plain)                # ... beside the same images.
    size = G.img_resolution
    for row in range(G.c_dim):                                   # Each row's part of the strip holds its name.
        assert grid[row * size:(row + 1) * size, :strip].max() > 100
    rows = [grid[row * size:(row + 1) * size, :strip] for row in range(G.c_dim)]
    assert not any(np.array_equal(rows[a], rows[b]) for a in range(4) for b in range(a + 1, 4))


def test_a_network_file_with_malformed_class_names_is_one_line(tmp_path):
    pkl = helpers.write_snapshot(tmp_path / 'bad.pkl', dict(helpers.make_networks(c_dim=2), class_names=['a', 3]))
    assert '"class_names" is' in helpers.error_line(run(pkl, tmp_path / 'out', '--seeds=1', '--class=all'))


@pytest.mark.parametrize('args, message', [(['--seeds=1', '--class=some'], "'some': accepted: a class index"),
                                           (['--rows=1', '--cols=2', '--class=all'], 'all draws one grid row per class')])
def test_class_values_other_than_an_index_or_all_are_one_line(conditional_snapshot, tmp_path, args, message):
    _G, pkl = conditional_snapshot
    assert message in helpers.error_line(run(pkl, tmp_path, *args))


def test_class_all_on_an_unconditional_network_is_one_line(snapshot, tmp_path):
    _G, pkl = snapshot
    assert 'the network is unconditional' in helpers.error_line(run(pkl, tmp_path, '--seeds=1', '--class=all'))


def test_style_mixing_layer_out_of_range_fails(snapshot, tmp_path):
    G, pkl = snapshot
    line = helpers.error_line(run(pkl, tmp_path, '--rows=1', '--cols=2', f'--styles=0-{G.num_ws}'))
    assert '--styles' in line and f'0..{G.num_ws - 1}' in line


def test_style_mixing_needs_rows_and_cols(snapshot, tmp_path):
    _G, pkl = snapshot
    assert 'needs both --rows and --cols' in helpers.error_line(run(pkl, tmp_path, '--rows=1'))


@pytest.mark.parametrize('value', ['nan', 'inf', '-inf'])
def test_non_finite_truncation_is_refused_before_any_image(snapshot, tmp_path, value):
    _G, pkl = snapshot
    line = helpers.error_line(run(pkl, tmp_path / 'out', '--seeds=0', f'--trunc={value}'))
    assert '--trunc' in line and 'finite number' in line and '1 = no truncation' in line
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('value', ['nan', 'inf'])
def test_non_finite_truncation_cutoff_is_refused(snapshot, tmp_path, value):
    _G, pkl = snapshot
    assert '--trunc-cutoff' in helpers.error_line(run(pkl, tmp_path / 'out', '--seeds=0', f'--trunc-cutoff={value}'))
    assert not (tmp_path / 'out').exists()


def test_projected_w_with_nan_values_is_refused(snapshot, tmp_path):
    G, pkl = snapshot
    ws = np.zeros([1, G.num_ws, G.w_dim], dtype=np.float32)
    ws[0, 0, 0] = np.nan
    np.savez(tmp_path / 'diverged.npz', w=ws)
    line = helpers.error_line(run(pkl, tmp_path / 'out', f'--projected-w={tmp_path / "diverged.npz"}'))
    assert 'diverged.npz' in line and 'nan or inf' in line
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('where, message', [('file', 'is a file, not a folder'), ('file/sub', 'lies under')])
def test_outdir_that_is_or_lies_under_a_file_is_one_line_naming_the_flag(snapshot, tmp_path, where, message):
    _G, pkl = snapshot
    (tmp_path / 'file').write_bytes(b'keep me')
    line = helpers.error_line(run(pkl, tmp_path / where, '--seeds=0'))
    assert '--outdir' in line and message in line and str(tmp_path / 'file') in line
    assert (tmp_path / 'file').read_bytes() == b'keep me'
