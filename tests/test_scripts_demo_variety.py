"""scripts/demo_variety.py: within-class variety of generated images against the real ones."""

import importlib.util
import os

import numpy as np

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
