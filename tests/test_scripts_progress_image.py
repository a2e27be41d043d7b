"""scripts/progress_image.py: one strip per fakes grid of a run, in training order, with the same cells each time."""

import importlib.util
import json
import os

import numpy as np
import PIL.Image
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


def test_grids_are_stacked_in_training_order_and_fakes_init_is_dropped_when_redundant(tmp_path):
    names = ['fakes_init.png', 'fakes000000.png', 'fakes000000_500img.png', 'fakes000002.png']
    run_dir = _run_dir(tmp_path, names)
    assert [kimg for kimg, _path in progress_image.fakes_in_order(str(run_dir))] == [0, 0.5, 2]
    image = progress_image.progress_image(str(run_dir), rows=1, scale=2)
    assert image.shape == (3 * 4 * 2, progress_image.LABEL_WIDTH + 12 * 2, 3)  # 3 strips of one 4-pixel row.
    grey = image[:, -1, 0]  # The right edge: the grids' own pixels, top strip to bottom.
    assert list(grey[::8]) == [40, 80, 120]


def test_cli_writes_progress_png_into_the_run_directory(tmp_path):
    run_dir = _run_dir(tmp_path, ['fakes000000.png', 'fakes000001.png'])
    result = CliRunner().invoke(progress_image.main, [str(run_dir), '--rows=2'])
    assert result.exit_code == 0, result.output
    assert PIL.Image.open(run_dir / 'progress.png').size == (progress_image.LABEL_WIDTH + 12 * 4, 2 * 8 * 4)


def test_a_run_without_grids_is_one_line(tmp_path):
    (tmp_path / 'training_options.json').write_text(json.dumps({'grid_size': [3, 2]}))
    result = CliRunner().invoke(progress_image.main, [str(tmp_path)])
    assert result.exit_code == 1 and 'holds no fakes*.png grids' in result.output
