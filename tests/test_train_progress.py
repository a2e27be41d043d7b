"""Between ticks a line says how far the tick is, at least every PROGRESS_INTERVAL_SEC; PyTorch's CPU threads follow
the cores this process may use (--threads overrides), and the log names the count."""

import os

import pytest
import torch

from tests.train_helpers import tiny_config, write_image_folder
from training import training_loop
from training.cli import config as run_config
from training.cli import launch as train_launch


@pytest.fixture(scope='module')
def data16(tmp_path_factory):
    path = tmp_path_factory.mktemp('data') / 'tiny16'
    write_image_folder(str(path), num_images=8, resolution=16)
    return str(path)


@pytest.mark.parametrize('cores, processes, workers, threads', [(2, 1, 1, 1), (2, 1, 0, 2), (16, 2, 3, 5), (1, 1, 0, 1),
                                                                (4, 8, 0, 1)])
def test_default_threads_leave_a_core_per_dataloader_worker(cores, processes, workers, threads):
    assert run_config.default_threads(cores, processes, workers) == threads


def test_threads_resolve_from_the_cores_or_the_flag(tmp_path, data16, monkeypatch):
    monkeypatch.setattr(run_config, 'available_cores', lambda: 6)
    assert tiny_config(tmp_path / 'runs', data16, workers=2).num_threads == 4
    assert tiny_config(tmp_path / 'runs', data16, workers=2, threads=3).num_threads == 3


def test_the_run_uses_and_names_its_threads_and_gives_the_callers_count_back(tmp_path, data16):
    before = torch.get_num_threads()
    config = tiny_config(tmp_path / 'runs', data16, kimg=0.004, tick=0.004, threads=1)
    run_dir = train_launch.start(config, env={})
    assert 'CPU threads: 1 (--threads;' in open(os.path.join(run_dir, 'log.txt')).read()
    assert torch.get_num_threads() == before


def test_a_progress_line_comes_between_ticks_when_the_interval_has_passed(tmp_path, data16, monkeypatch):
    monkeypatch.setattr(training_loop, 'PROGRESS_INTERVAL_SEC', 0)  # Every step that does not end a tick.
    config = tiny_config(tmp_path / 'runs', data16, kimg=0.016, tick=0.012)  # Steps of 4 images; ticks at 4 and 16.
    run_dir = train_launch.start(config, env={})
    lines = open(os.path.join(run_dir, 'log.txt')).read().splitlines()
    progress = [line for line in lines if line.startswith('  ... kimg ')]
    assert [line.split(':')[0] for line in progress] == ['  ... kimg 0.008', '  ... kimg 0.012']
    assert progress[0].startswith('  ... kimg 0.008: 4 images into tick 1 (ends at kimg 0.016), ')
    assert ' img/s, eta ' in progress[0]


def test_no_progress_line_when_ticks_come_sooner_than_the_interval(tmp_path, data16):
    config = tiny_config(tmp_path / 'runs', data16, kimg=0.012, tick=0.004)
    run_dir = train_launch.start(config, env={})
    assert not [line for line in open(os.path.join(run_dir, 'log.txt')) if line.startswith('  ... kimg ')]
