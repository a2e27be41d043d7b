"""Faults a cluster run meets: bad images in --data, a disk that fills up mid-run, a --resume of another architecture."""

import errno
import os
import pickle

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import train
from tests import safety_helpers
from tests.train_helpers import TINY_ARGS, write_image_folder
from training import training_loop
from training.dataset import DatasetError
from training.cli import resume_source
from training.run import resume as run_resume


def _truncate_pixels(png_path):
    """Keep the header (size and mode still read fine) but cut the compressed pixel data short."""
    data = open(png_path, 'rb').read()
    with open(png_path, 'wb') as f:
        f.write(data[:len(data) // 2])


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith('Error:')]


def test_image_of_another_size_in_data_is_one_line_before_anything_starts(tmp_path):
    data = write_image_folder(tmp_path / 'data', num_images=4, resolution=16)
    PIL.Image.fromarray(np.zeros([8, 8, 3], np.uint8)).save(os.path.join(data, 'img00002.png'))
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', f'--data={data}', *TINY_ARGS])
    assert result.exit_code == 1
    assert f'Error: --data: {data}:img00002.png has shape [3, 8, 8] (CHW) but the dataset\'s images are [3, 16, 16]' \
        in result.output
    assert not (tmp_path / 'runs').exists()


def test_unreadable_image_in_data_is_one_line_even_for_dry_run(tmp_path):
    data = write_image_folder(tmp_path / 'data', num_images=4, resolution=16)
    with open(os.path.join(data, 'img00003.png'), 'wb') as f:
        f.write(b'not an image at all')
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', f'--data={data}', *TINY_ARGS, '--dry-run'])
    assert result.exit_code == 1
    assert f'Error: --data: cannot read image {data}:img00003.png: not a readable image' in result.output


class _OneCorruptImage(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, idx):
        if idx == 2:
            raise DatasetError('cannot decode image data.zip:img00002.png: corrupt image data (OSError: truncated)')
        return torch.zeros([3, 4, 4]), torch.zeros([0])


def test_decode_error_in_a_dataloader_worker_becomes_one_line_naming_the_image():
    loader = torch.utils.data.DataLoader(_OneCorruptImage(), batch_size=4, num_workers=1)
    run = training_loop.Run.__new__(training_loop.Run)
    run.data_iter = iter(loader)
    with pytest.raises(DatasetError) as info:
        run.next_batch()
    assert str(info.value) == 'cannot decode image data.zip:img00002.png: corrupt image data (OSError: truncated)'


@pytest.mark.slow
def test_corrupt_pixels_found_by_a_spawned_rank_end_the_run_with_one_line(tmp_path):
    data = write_image_folder(tmp_path / 'data', num_images=4, resolution=16)
    _truncate_pixels(os.path.join(data, 'img00001.png'))
    result = safety_helpers.run_entry_point(['train.py', f'--outdir={tmp_path / "runs"}', f'--data={data}', *TINY_ARGS,
                                             '--gpus=2'], cwd=safety_helpers.REPO_ROOT)
    assert result.returncode == 1 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    errors = _error_lines(result.stderr)
    assert len(errors) == 1 and f'cannot decode image {data}:img00001.png' in errors[0]


@pytest.mark.parametrize('prefix, named', [('log.txt', 'log.txt'), ('events.out.tfevents', 'events.out.tfevents.*')])
def test_a_log_or_tensorboard_file_on_a_full_disk_stops_the_run_with_one_line(tmp_path, prefix, named):
    data = write_image_folder(tmp_path / 'data', num_images=4, resolution=16)
    outdir = tmp_path / 'runs'
    result = safety_helpers.run_with_full_file(['train.py', f'--outdir={outdir}', f'--data={data}', *TINY_ARGS],
                                               cwd=safety_helpers.REPO_ROOT, prefix=prefix)
    assert result.returncode == 1 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    errors = _error_lines(result.stderr)
    assert len(errors) == 1, result.stderr[-3000:]
    assert errors[0].startswith('Error: cannot write ') and f'{named}: the disk is full (' in errors[0], errors[0]


@pytest.mark.parametrize('code, said', [(errno.ENOSPC, 'the disk is full'), (errno.EROFS, 'read-only file system')])
def test_a_run_folder_that_cannot_be_created_is_one_line(tmp_path, monkeypatch, code, said):
    from click.testing import CliRunner  # pylint: disable=import-outside-toplevel
    import train  # pylint: disable=import-outside-toplevel
    from training.cli import run_dir as run_dirs  # pylint: disable=import-outside-toplevel
    data = write_image_folder(tmp_path / 'data', num_images=4, resolution=16)
    real_makedirs = os.makedirs

    def makedirs(path, *args, **kwargs):
        if run_dirs.RUN_DIR_RE.match(os.path.basename(os.fspath(path))):
            raise OSError(code, os.strerror(code), os.fspath(path))
        return real_makedirs(path, *args, **kwargs)
    monkeypatch.setattr(run_dirs.os, 'makedirs', makedirs)
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', f'--data={data}', *TINY_ARGS])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    errors = [line for line in result.output.splitlines() if line.startswith('Error:')]
    assert len(errors) == 1 and errors[0].startswith(f'Error: cannot write {tmp_path / "runs"}/00000-') and said in errors[0]


@pytest.mark.slow
def test_full_disk_at_a_snapshot_is_one_line_and_the_earlier_pair_still_resumes(tmp_path):
    data = write_image_folder(tmp_path / 'data', num_images=4, resolution=16)
    outdir = tmp_path / 'runs'
    # The first snapshot pair (pickle and resume state) is written; the second snapshot finds the disk full.
    result = safety_helpers.run_with_full_disk(['train.py', f'--outdir={outdir}', f'--data={data}', *TINY_ARGS],
                                               cwd=safety_helpers.REPO_ROOT, allowed_files=2,
                                               name_part='network-snapshot-')
    assert result.returncode == 1 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    run_dir = outdir / os.listdir(outdir)[0]
    pkl = run_dir / 'network-snapshot-000000.pkl'
    second = run_dir / 'network-snapshot-000000_012img.pkl'
    errors = _error_lines(result.stderr)
    assert len(errors) == 1 and errors[0].startswith(f'Error: cannot write {second}: the disk is full (') and 'free' in errors[0]
    assert not [name for name in os.listdir(run_dir) if name.endswith('.tmp')]
    with open(pkl, 'rb') as f:
        assert set(pickle.load(f)) >= {'G', 'D', 'G_ema'}
    assert resume_source.find_latest_snapshot(str(outdir)) == str(pkl)
    assert run_resume.pair_problem(str(pkl)) is None


def test_resume_from_another_architecture_needs_transfer(tmp_path):
    data = write_image_folder(tmp_path / 'data', num_images=4, resolution=16)
    first = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', f'--data={data}', *TINY_ARGS, '--kimg=0.004'])
    assert first.exit_code == 0, first.output
    run_dir = tmp_path / 'runs' / os.listdir(tmp_path / 'runs')[0]
    pkl = run_dir / 'network-snapshot-000000.pkl'
    args = [f'--outdir={tmp_path / "runs"}', f'--data={data}', *TINY_ARGS, '--kimg=0.004', '--g-arch=squeeze',
            f'--resume={pkl}']
    refused = CliRunner().invoke(train.main, args)
    assert refused.exit_code == 1
    assert f'Error: --resume={pkl}: its networks differ from the configured ones' in refused.output
    assert 'pass --transfer' in refused.output
    allowed = CliRunner().invoke(train.main, [*args, '--transfer'])
    assert allowed.exit_code == 0, allowed.output
    assert 'transferred tensors (matching / all): G ' in allowed.output


def test_a_run_refused_before_its_first_snapshot_leaves_no_run_directory(tmp_path):
    data = write_image_folder(tmp_path / 'data', num_images=4, resolution=16)
    garbage = tmp_path / 'garbage.pkl'
    garbage.write_bytes(b'not a pickle')
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', f'--data={data}', *TINY_ARGS,
                                             f'--resume={garbage}'])
    assert result.exit_code == 1 and f'Error: --resume={garbage}' in result.output
    assert 'Removed ' in result.output and os.listdir(tmp_path / 'runs') == []


def test_a_nan_loss_mid_tick_stops_at_the_tick_with_one_line_and_is_never_snapshotted(tmp_path, monkeypatch):
    from training import loss as training_loss  # pylint: disable=import-outside-toplevel
    run_D = training_loss.StyleGAN2Loss.run_D

    def diverging_run_D(self, img, c, features=None):  # D diverges from image 4 on (the second step).
        out = run_D(self, img, c, features)
        return (out[0] * float('nan') if self.nonfinite_from_now else out[0], *out[1:])
    monkeypatch.setattr(training_loss.StyleGAN2Loss, 'run_D', diverging_run_D)
    accumulate = training_loss.StyleGAN2Loss.accumulate_gradients

    def accumulate_gradients(self, phase, *args, cur_nimg, **kwargs):
        self.nonfinite_from_now = cur_nimg >= 4
        return accumulate(self, phase, *args, cur_nimg=cur_nimg, **kwargs)
    monkeypatch.setattr(training_loss.StyleGAN2Loss, 'accumulate_gradients', accumulate_gradients)

    data = write_image_folder(tmp_path / 'data', num_images=4, resolution=16)
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', f'--data={data}', *TINY_ARGS])
    assert result.exit_code == 1, result.output
    assert _error_lines(result.output) == ['Error: Loss/G/loss is NaN in phase Gmain (Gmain pass) at image 4 (kimg 0.0); '
                                           'lower the learning rate, train in fp32 (--fp32=1), or resume from an '
                                           'earlier snapshot']
    run_dir = tmp_path / 'runs' / os.listdir(tmp_path / 'runs')[0]
    assert sorted(name for name in os.listdir(run_dir) if name.endswith('.pkl')) == ['network-snapshot-000000.pkl']
