"""Writing outputs on a full disk or a read-only place: one 'Error:' line naming the file, nothing earlier lost."""

import errno
import json
import os
import pickle
import tempfile
import zipfile

import pytest
from click.testing import CliRunner

import calc_metrics
import dnnlib
import generate
from metrics import detectors
from tests import full_disk
from tests import generate_helpers
from tests import metrics_helpers
from tests import safety_helpers
from training import export
from training import legacy


@pytest.fixture(scope='module')
def snapshot(tmp_path_factory):
    folder = tmp_path_factory.mktemp('snapshot')
    return generate_helpers.write_snapshot(folder / 'network-snapshot-000000.pkl', generate_helpers.make_networks())


def fill_disk(monkeypatch, allowed_files=0):
    """In this process, every atomic write after the first `allowed_files` hits a real ENOSPC (tests/full_disk.py)."""
    monkeypatch.setattr(tempfile, 'mkstemp', tempfile.mkstemp)  # Puts the real one back after the test.
    full_disk.fill_disk_after(allowed_files)


def make_read_only(monkeypatch):
    """Every atomic write fails as on a read-only file system (the tests run as root, whom chmod does not stop)."""
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, 'Read-only file system')
    monkeypatch.setattr(tempfile, 'mkstemp', refuse)


def invoke(command, args):
    return CliRunner().invoke(command, [str(arg) for arg in args])


def error_line(result):
    """The one 'Error:' line of a failed run; there must be no traceback."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # click's exit, no uncaught exception.
    lines = [line for line in result.output.splitlines() if line.startswith('Error')]
    assert len(lines) == 1, result.output
    return lines[0]


def temporary_files(*folders):
    return [name for folder in folders if os.path.isdir(folder) for name in os.listdir(folder) if name.endswith('.tmp')]

#----------------------------------------------------------------------------
# generate.py


def test_generate_on_a_full_disk_keeps_earlier_images_and_exits_with_one_line(snapshot, tmp_path):
    script = os.path.join(safety_helpers.REPO_ROOT, 'generate.py')
    result = safety_helpers.run_with_full_disk([script, f'--network={snapshot}', f'--outdir={tmp_path / "out"}',
                                                '--seeds=0-2', '--device=cpu'], cwd=tmp_path, allowed_files=1)
    assert result.returncode != 0 and 'Traceback' not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith('Error: cannot write '), result.stderr
    assert str(tmp_path / 'out' / 'seed0001.png') in lines[0] and 'the disk is full' in lines[0] and 'free' in lines[0]
    assert os.listdir(tmp_path / 'out') == ['seed0000.png']
    assert generate_helpers.read_png(tmp_path / 'out' / 'seed0000.png').shape == (16, 16, 3)


def test_generate_on_a_read_only_place_is_one_line(snapshot, tmp_path, monkeypatch):
    make_read_only(monkeypatch)
    line = error_line(invoke(generate.generate_images, [f'--network={snapshot}', f'--outdir={tmp_path}',
                                                        '--seeds=0', '--device=cpu', '--grid']))
    assert str(tmp_path / 'grid.png') in line and 'read-only file system' in line
    assert os.listdir(tmp_path) == []

#----------------------------------------------------------------------------
# python -m training.export and python -m training.legacy


def export_args(source, dest):
    return [f'--network={source}', f'--dest={dest}']


def legacy_args(source, dest):
    return [f'--source={source}', f'--dest={dest}']


CONVERTERS = [(export.main, export_args), (legacy.convert_network_pickle, legacy_args)]


@pytest.mark.parametrize('command, args', CONVERTERS)
def test_converting_on_a_full_disk_keeps_the_old_dest(snapshot, tmp_path, monkeypatch, command, args):
    dest = tmp_path / 'model.out'
    dest.write_bytes(b'earlier version')
    fill_disk(monkeypatch)
    line = error_line(invoke(command, [*args(snapshot, dest), '--overwrite']))
    assert f'cannot write {dest}: the disk is full' in line
    assert dest.read_bytes() == b'earlier version' and temporary_files(tmp_path) == []


@pytest.mark.parametrize('command, args', CONVERTERS)
def test_converting_to_a_read_only_place_is_one_line(snapshot, tmp_path, monkeypatch, command, args):
    make_read_only(monkeypatch)
    line = error_line(invoke(command, args(snapshot, tmp_path / 'model.out')))
    assert f'cannot write {tmp_path / "model.out"}: read-only file system' in line
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('command, args', CONVERTERS)
def test_dest_under_a_file_is_one_line_naming_the_flag(snapshot, tmp_path, command, args):
    (tmp_path / 'file').write_bytes(b'keep me')
    line = error_line(invoke(command, args(snapshot, tmp_path / 'file' / 'model.out')))
    assert '--dest' in line and f'{tmp_path / "file"} is a file' in line
    assert (tmp_path / 'file').read_bytes() == b'keep me'


@pytest.mark.parametrize('command, args', CONVERTERS)
def test_missing_dest_folder_is_created(snapshot, tmp_path, command, args):
    dest = tmp_path / 'new' / 'folder' / 'model.out'
    assert invoke(command, args(snapshot, dest)).exit_code == 0
    assert zipfile.is_zipfile(dest) if command is export.main else isinstance(pickle.loads(dest.read_bytes()), dict)

#----------------------------------------------------------------------------
# calc_metrics.py: the result line in metric-<name>.jsonl must be written; the statistics cache may fail.


@pytest.fixture
def metric_env(tmp_path, monkeypatch):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'dnnlib-cache'))
    monkeypatch.delenv(detectors.DETECTOR_DIR_ENV, raising=False)
    data = metrics_helpers.write_image_folder(tmp_path / 'data', num_images=20).path
    return dnnlib.EasyDict(data=data, detector_dir=metrics_helpers.write_detector_dir(tmp_path / 'detectors'),
                           cache_dir=str(tmp_path / 'dnnlib-cache' / 'gan-metrics'))


def write_metric_snapshot(folder, data_path=None):
    """A stand-in snapshot; with `data_path`, inside a run directory that records the dataset."""
    os.makedirs(folder)
    if data_path is not None:
        with open(os.path.join(folder, 'training_options.json'), 'w') as f:
            json.dump(dict(training_set_kwargs=metrics_helpers.dataset_kwargs_for(data_path)), f)
    G = metrics_helpers.StandInGenerator()
    path = os.path.join(folder, 'network-snapshot-000000.pkl')
    with open(path, 'wb') as f:
        pickle.dump(dict(G=G, D=None, G_ema=G, augment_pipe=None, training_set_kwargs=None), f)
    return path


def run_metric(snapshot, env, *args):
    return invoke(calc_metrics.main, ['--network', snapshot, '--metrics', 'fid1k_full', '--detector-dir',
                                      env.detector_dir, '--device', 'cpu', *args])


def test_full_disk_while_recording_a_metric_is_one_line_and_keeps_earlier_lines(tmp_path, metric_env, monkeypatch):
    run_dir = tmp_path / 'run'
    snapshot = write_metric_snapshot(run_dir, metric_env.data)
    record = run_dir / 'metric-fid1k_full.jsonl'
    record.write_text('{"metric": "fid1k_full", "earlier": true}\n')
    fill_disk(monkeypatch)
    result = run_metric(snapshot, metric_env)
    assert f'cannot write {record}: the disk is full' in error_line(result)
    assert '"fid1k_full"' in result.stdout  # The value is still shown.
    assert record.read_text() == '{"metric": "fid1k_full", "earlier": true}\n'
    assert temporary_files(run_dir, metric_env.cache_dir) == []


def test_full_disk_while_caching_statistics_warns_and_still_gives_the_metric(tmp_path, metric_env, monkeypatch):
    snapshot = write_metric_snapshot(tmp_path / 'loose')
    fill_disk(monkeypatch)
    result = run_metric(snapshot, metric_env, '--data', metric_env.data)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith('Warning')]
    assert len(warnings) == 1 and 'not cached' in warnings[0] and 'the disk is full' in warnings[0]
    assert json.loads(result.stdout.splitlines()[-1])['results']['fid1k_full'] > 0
    assert os.listdir(metric_env.cache_dir) == []
