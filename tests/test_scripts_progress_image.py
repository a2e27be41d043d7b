"""scripts/progress_image.py: a few fakes grids of a run side by side, in training order, fitted to a screen."""

import importlib.util
import json
import os

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location('progress_image', os.path.join(REPO_ROOT, 'scripts', 'progress_image.py'))
progress_image = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(progress_image)


def _run_dir(tmp_path, names):
    """A run directory with a 3x2 grid of 4-pixel cells per fakes file, each file one flat grey level."""
    (tmp_path / 'training_options.json').write_text(json.dumps({'grid_size': [3, 2]}))
    for level, name in enumerate(names):
        PIL.Image.fromarray(np.full([8, 12, 3], 40 * level, np.uint8)).save(tmp_path / name)
    return tmp_path


def test_grids_come_in_training_order_and_fakes_init_is_dropped_when_redundant(tmp_path):
    names = ['fakes_init.png', 'fakes000000.png', 'fakes000000_500img.png', 'fakes000002.png']
    run_dir = _run_dir(tmp_path, names)
    assert [kimg for kimg, _path in progress_image.fakes_in_order(str(run_dir))] == [0, 0.5, 2]


@pytest.mark.parametrize('count, expected', [(3, [0, 5, 9]), (2, [0, 9]), (12, list(range(10))), (1, [9])])
def test_a_few_panels_spread_from_the_first_grid_to_the_last(count, expected):
    assert progress_image.spread(list(range(10)), count) == expected


def test_panels_sit_side_by_side_scaled_to_fit_a_screen_in_training_order(tmp_path):
    names = ['fakes000000.png', 'fakes000000_500img.png', 'fakes000002.png']
    run_dir = _run_dir(tmp_path, names)
    image = progress_image.progress_image(str(run_dir), panels=3, rows=1)
    gap, label = progress_image.GAP, progress_image.LABEL_HEIGHT
    scale = (1920 - 2 * gap) // (3 * 12)  # Whole-pixel enlargement of 12x4 crops: 53x, height 212 + label.
    assert image.shape == (label + 4 * scale, 3 * 12 * scale + 2 * gap, 3)
    assert image.shape[1] <= 1920 and image.shape[0] <= 1080
    greys = [image[-1, i * (12 * scale + gap), 0] for i in range(3)]  # Bottom-left pixel of each panel.
    assert greys == [0, 40, 80]


def test_large_grids_are_shrunk_to_fit(tmp_path):
    (tmp_path / 'training_options.json').write_text(json.dumps({'grid_size': [8, 10]}))
    for name in ('fakes000000.png', 'fakes000004.png'):
        PIL.Image.fromarray(np.zeros([1280, 1024, 3], np.uint8)).save(tmp_path / name)
    image = progress_image.progress_image(str(tmp_path))
    assert image.shape[0] <= 1080 and image.shape[1] <= 1920


def test_cli_writes_progress_png_into_the_run_directory(tmp_path):
    run_dir = _run_dir(tmp_path, ['fakes000000.png', 'fakes000001.png'])
    result = CliRunner().invoke(progress_image.main, [str(run_dir), '--rows=2'])
    assert result.exit_code == 0, result.output
    width, height = PIL.Image.open(run_dir / 'progress.png').size
    assert width <= 1920 and height <= 1080 and width > height  # Two panels side by side.


def test_a_run_without_grids_is_one_line(tmp_path):
    (tmp_path / 'training_options.json').write_text(json.dumps({'grid_size': [3, 2]}))
    result = CliRunner().invoke(progress_image.main, [str(tmp_path)])
    assert result.exit_code == 1 and 'holds no fakes*.png grids' in result.output
