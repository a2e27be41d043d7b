"""Training steps between ticks read nothing back to the host: on a GPU each read would stall the queue.

Counted on the CPU by wrapping every way a tensor's value reaches Python (item, bool, float, int, index, tolist,
numpy, cpu) during steps that are not tick boundaries: ADA adjustments, lazy regularisation, the non-finite
check and the preemption agreement included. The one read allowed is the augmentation pipe's padding, once per
geometric resample. PyTorch's Adam keeps its step counter on the host by design (capturable=False); reads of
those counters are not device reads and are left out.
"""

import os
import tempfile

import pytest
import torch

from tests.train_helpers import tiny_config, write_image_folder
from torch_utils.host_reads import HostReads, optimizer_step_counters
from training import training_loop
from training.augment import pipe as augment_pipe

PIPE_FILE = os.path.abspath(augment_pipe.__file__)


def _count_between_ticks(config, rank=0, steps=8):
    """Build the run, take one step (optimizer state appears), then count reads over `steps` steps."""
    run = training_loop.build_run(config, rank=rank)
    run.train_step()
    resamples = []
    original = run.nets.augment_pipe._resample  # pylint: disable=protected-access
    run.nets.augment_pipe._resample = lambda *args, **kwargs: resamples.append(1) or original(*args, **kwargs)  # pylint: disable=protected-access
    with HostReads(ignore=optimizer_step_counters(run.optimizers.values())) as counter:
        for _ in range(steps):
            run.train_step()
            assert not run.preemption.requested()
    run.preemption.uninstall()
    return counter, len(resamples), run


@pytest.fixture(scope='module')
def data16(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp('data') / 'tiny16', num_images=8, resolution=16)


@pytest.mark.parametrize('reg_type', ['none', 'ggdr'])
def test_steps_between_ticks_read_only_the_augmentation_padding(tmp_path, data16, reg_type):
    # ADA adjusts p every step; G and D regularise every 2 steps: every kind of step is among the 8.
    config = tiny_config(tmp_path / 'runs', data16, kimg=1, aug='ada', augpipe='bgc', reg_type=reg_type)
    config.update(run_dir=None, ada_interval=1, G_reg_interval=2, D_reg_interval=2, augment_p=0.5)
    counter, resamples, run = _count_between_ticks(config)
    assert counter.outside(PIPE_FILE) == {}
    assert counter.inside(PIPE_FILE) == resamples and resamples >= 8 * 3  # Gmain, Dgen and Dreal in every step.
    assert float(run.nets.augment_pipe.p) != 0.5  # ADA did adjust p, on the device.


def test_transitional_conditioning_steps_read_nothing_more(tmp_path_factory, tmp_path):
    """The transition moves in the first of the counted steps (4 images a step, fully in at 16): its buffers are
    written from the host, never read."""
    labelled = write_image_folder(tmp_path_factory.mktemp('data') / 'lab16', num_images=8, resolution=16, labels=[0, 1])
    config = tiny_config(tmp_path / 'runs', labelled, kimg=1, aug='ada', augpipe='bgc', cond=True, t_start_kimg=0,
                         t_end_kimg=0.016)
    config.update(run_dir=None, ada_interval=1, G_reg_interval=2, D_reg_interval=2, augment_p=0.5)
    counter, resamples, run = _count_between_ticks(config)
    assert counter.outside(PIPE_FILE) == {}
    assert counter.inside(PIPE_FILE) == resamples
    assert float(run.nets.D.transition) == 1.0


def test_the_host_read_counter_sees_the_reads_it_must_forbid():
    x = torch.ones([2])
    with HostReads() as counter:
        bool(x.sum() > 0), float(x[0]), x.tolist(), x.cpu(), x.numpy(), int(x[1]), x.sum().item()
    assert counter.total() == 7


def _two_process_worker(rank, init_file, config, results):
    torch.distributed.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=2)
    try:
        counter, resamples, _run = _count_between_ticks(config, rank=rank)
        results[rank] = (counter.outside(PIPE_FILE), counter.inside(PIPE_FILE), resamples)
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_agree_on_preemption_and_adjust_ada_without_host_reads(tmp_path, data16):
    config = tiny_config(tmp_path / 'runs', data16, kimg=1, aug='ada', augpipe='bgc', gpus=2, device='cpu')
    config.update(run_dir=None, ada_interval=1, G_reg_interval=2, D_reg_interval=2)
    with torch.multiprocessing.Manager() as manager, tempfile.TemporaryDirectory() as temp_dir:
        results = manager.dict()
        torch.multiprocessing.spawn(_two_process_worker, args=(os.path.join(temp_dir, 'init'), config, results), nprocs=2)
        results = dict(results)
    for rank in (0, 1):
        outside, inside, resamples = results[rank]
        assert outside == {} and inside == resamples, (rank, outside)
