"""generate.py progress: a bounded number of lines on stderr however many seeds, never one line per seed."""

import os

import pytest

import generate
from tests import generate_helpers as helpers


@pytest.fixture(scope='module')
def snapshot(tmp_path_factory):
    folder = tmp_path_factory.mktemp('snapshot')
    return helpers.write_snapshot(folder / 'network-snapshot-000000.pkl', helpers.make_networks(c_dim=0))


def run(network, outdir, *args):
    return helpers.run_cli(generate.generate_images, [f'--network={network}', f'--outdir={outdir}', '--device=cpu', *args])


def test_many_seeds_print_a_bounded_number_of_progress_lines(snapshot, tmp_path):
    result = run(snapshot, tmp_path, '--seeds=0-99', '--batch=10')
    assert result.exit_code == 0, result.output
    assert len(os.listdir(tmp_path)) == 100
    progress = result.stderr.splitlines()
    assert 1 <= len(progress) <= 11 and all(line.startswith('Generating  ') for line in progress)
    assert progress[-1].startswith('Generating  100/100 (100%)') and 'done in' in progress[-1]
    assert len(result.stdout.splitlines()) == 2  # Loading ..., Done ...


def test_progress_counts_the_images_of_a_grid(snapshot, tmp_path):
    result = run(snapshot, tmp_path, '--seeds=0-5', '--grid')
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1].startswith('Generating  6/6 (100%)')
    assert os.listdir(tmp_path) == ['grid.png']


def test_style_mixing_shows_progress_over_every_image_it_renders(snapshot, tmp_path):
    result = run(snapshot, tmp_path, '--rows=1,2', '--cols=3,4')
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1].startswith('Generating  8/8 (100%)')  # 4 sources and 4 mixes.
