"""scripts/demo_variety.py: within-class variety of generated images against the real ones."""

import importlib.util
import os

import numpy as np
import pytest
from click.testing import CliRunner

from tests.train_helpers import tiny_config, write_image_folder
from training.cli import launch as train_launch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location('demo_variety', os.path.join(REPO_ROOT, 'scripts', 'demo_variety.py'))
demo_variety = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo_variety)


def test_identical_images_have_no_variety_and_black_against_white_the_most():
    same = np.full([4, 3, 8, 8], 77, np.uint8)
    assert demo_variety.mean_pairwise_distance(same) == 0
    extremes = np.stack([np.zeros([3, 8, 8], np.uint8), np.full([3, 8, 8], 255, np.uint8)])
    assert demo_variety.mean_pairwise_distance(extremes) == 1


def test_a_generator_that_collapses_scores_far_below_the_data():
    rng = np.random.RandomState(0)
    varied = rng.randint(0, 256, size=[16, 1, 8, 8]).astype(np.uint8)
    collapsed = np.clip(np.repeat(varied[:1], 16, axis=0).astype(int) + rng.randint(-2, 3, size=[16, 1, 8, 8]), 0, 255)
    assert demo_variety.mean_pairwise_distance(collapsed) < 0.05 * demo_variety.mean_pairwise_distance(varied)


@pytest.fixture(scope='module')
def conditional_run(tmp_path_factory):
    """A tiny two-class run with snapshots at 0 and 8 images (random-pixel data, four images per class)."""
    tmp_path = tmp_path_factory.mktemp('variety')
    data = write_image_folder(tmp_path / 'data', num_images=8, labels=[0, 1] * 4)
    return train_launch.start(tiny_config(tmp_path / 'runs', data, kimg=0.008, cond=True, snap=1, tick=0.004), env={})


def test_scores_the_last_snapshot_or_the_one_named_and_exits_one_below_the_bar(conditional_run):
    snapshots = sorted(f for f in os.listdir(conditional_run) if f.startswith('network-snapshot-') and f.endswith('.pkl'))
    assert snapshots[0] == 'network-snapshot-000000.pkl' and len(snapshots) > 1
    last = CliRunner().invoke(demo_variety.main, [conditional_run, '--samples=3'])
    assert last.exception is None or isinstance(last.exception, SystemExit), last.exception
    assert [line.split(':')[0] for line in last.output.splitlines()] == ['class 0', 'class 1', snapshots[-1]]
    first = CliRunner().invoke(demo_variety.main, [conditional_run, '--samples=3', f'--snapshot={snapshots[0]}'])
    assert first.output.splitlines()[-1].startswith(f'{snapshots[0]}: mean ratio ')
    strict = CliRunner().invoke(demo_variety.main, [conditional_run, '--samples=3', '--min-ratio=100'])
    assert strict.exit_code == 1


def test_a_snapshot_the_run_does_not_hold_is_one_line_naming_those_it_holds(conditional_run):
    result = CliRunner().invoke(demo_variety.main, [conditional_run, '--snapshot=network-snapshot-999999.pkl'])
    assert result.exit_code == 2 and 'network-snapshot-999999.pkl' in result.output
    assert 'network-snapshot-000000.pkl' in result.output
