"""calc_metrics.py end to end: JSON lines, metric-<name>.jsonl in the run directory, one-line errors."""

import json
import os
import pickle

import pytest
import torch
from click.testing import CliRunner

import calc_metrics
import dnnlib
from metrics import detectors
from metrics import metric_main
from torch_utils import misc
from tests import metrics_helpers as helpers


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'dnnlib-cache'))
    monkeypatch.delenv(detectors.DETECTOR_DIR_ENV, raising=False)
    return dnnlib.EasyDict(
        data=helpers.write_image_folder(tmp_path / 'data', num_images=20).path,
        detector_dir=helpers.write_detector_dir(tmp_path / 'detectors'),
    )


def write_snapshot(path, data_path=None, G=None):
    G = G if G is not None else helpers.StandInGenerator()
    training_set_kwargs = None if data_path is None else helpers.dataset_kwargs_for(data_path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        pickle.dump(dict(G=G, D=None, G_ema=G, augment_pipe=None, training_set_kwargs=training_set_kwargs), f)
    return str(path)


def write_run_dir(folder, data_path):
    os.makedirs(folder)
    with open(os.path.join(folder, 'training_options.json'), 'w') as f:
        json.dump(dict(training_set_kwargs=dict(helpers.dataset_kwargs_for(data_path), xflip=True)), f)
    return write_snapshot(os.path.join(folder, 'network-snapshot-000000.pkl'))


def run(args):
    return CliRunner().invoke(calc_metrics.main, [str(arg) for arg in args], catch_exceptions=False)


def json_lines(result):
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{')]


def error_line(result):
    lines = [line for line in result.output.splitlines() if line.startswith('Error')]
    assert len(lines) == 1, result.output
    return lines[0]

#----------------------------------------------------------------------------


def test_snapshot_in_run_dir_prints_json_and_appends_to_metric_jsonl(tmp_path, env):
    snapshot = write_run_dir(tmp_path / 'run', env.data)
    args = ['--network', snapshot, '--metrics', 'fid1k_full,kid1k', '--detector-dir', env.detector_dir, '--device', 'cpu']
    first = run(args)
    assert first.exit_code == 0, first.output
    lines = json_lines(first)
    assert [line['metric'] for line in lines] == ['fid1k_full', 'kid1k']
    assert lines[0]['snapshot_pkl'] == 'network-snapshot-000000.pkl' and lines[0]['results']['fid1k_full'] > 0
    assert run(args).exit_code == 0
    with open(tmp_path / 'run' / 'metric-fid1k_full.jsonl') as f:
        recorded = [json.loads(line) for line in f]
    assert len(recorded) == 2 and recorded[0]['results'] == lines[0]['results']
    assert sorted(os.listdir(tmp_path / 'run')) == ['metric-fid1k_full.jsonl', 'metric-kid1k.jsonl',
                                                    'network-snapshot-000000.pkl', 'training_options.json']


def test_data_from_run_dir_keeps_training_mirroring_unless_overridden(tmp_path, env):
    snapshot = write_run_dir(tmp_path / 'run', env.data)
    G, network_kwargs = calc_metrics.load_generator(snapshot)
    recorded = calc_metrics.resolve_dataset_kwargs(None, None, G, str(tmp_path / 'run'), network_kwargs, snapshot)
    overridden = calc_metrics.resolve_dataset_kwargs(None, False, G, str(tmp_path / 'run'), network_kwargs, snapshot)
    assert recorded.path == env.data and recorded.xflip is True and overridden.xflip is False


def test_snapshot_outside_run_dir_with_data_writes_no_jsonl(tmp_path, env):
    snapshot = write_snapshot(tmp_path / 'loose' / 'net.pkl')
    result = run(['--network', snapshot, '--metrics', 'is1k', '--data', env.data, '--detector-dir', env.detector_dir,
                  '--device', 'cpu'])
    assert result.exit_code == 0, result.output
    assert set(json_lines(result)[0]['results']) == {'is1k_mean', 'is1k_std'}
    assert os.listdir(tmp_path / 'loose') == ['net.pkl']


def test_unknown_metric_is_one_line_error_listing_accepted_names(tmp_path, env):
    result = run(['--network', write_snapshot(tmp_path / 'net.pkl'), '--metrics', 'fid50k_full,fid9'])
    assert result.exit_code != 0
    line = error_line(result)
    assert "'fid9'" in line and 'fid50k_full' in line and '--metrics' in line


def test_missing_network_is_one_line_error(tmp_path, env):
    result = run(['--network', tmp_path / 'nope.pkl', '--metrics', 'fid1k_full', '--data', env.data])
    assert result.exit_code != 0 and 'nope.pkl' in error_line(result)


def test_missing_data_is_one_line_error_naming_the_path(tmp_path, env):
    result = run(['--network', write_snapshot(tmp_path / 'net.pkl'), '--metrics', 'fid1k_full',
                  '--data', tmp_path / 'no-such-data', '--detector-dir', env.detector_dir, '--device', 'cpu'])
    assert result.exit_code != 0 and 'no-such-data' in error_line(result)


def test_no_data_and_no_run_dir_asks_for_data(tmp_path, env):
    result = run(['--network', write_snapshot(tmp_path / 'net.pkl'), '--metrics', 'fid1k_full', '--device', 'cpu'])
    assert result.exit_code != 0 and '--data' in error_line(result)


def test_missing_detector_offline_is_one_line_error_naming_file_url_and_option(tmp_path, env, monkeypatch):
    def refuse(url, *args, **kwargs):
        raise OSError(f'cannot download {url} (no network)')
    monkeypatch.setattr(dnnlib.util, 'open_url', refuse)
    empty = tmp_path / 'empty-detectors'
    empty.mkdir()
    result = run(['--network', write_snapshot(tmp_path / 'net.pkl'), '--metrics', 'pr1k3_full', '--data', env.data,
                  '--detector-dir', empty, '--device', 'cpu'])
    assert result.exit_code != 0
    line = error_line(result)
    assert 'vgg16.pt' in line and detectors.VGG16.url in line and '--detector-dir' in line


@pytest.mark.slow
def test_real_tiny_snapshot_in_run_dir_gives_fid(tmp_path, env):
    folder = tmp_path / 'run'
    os.makedirs(folder)
    with open(folder / 'training_options.json', 'w') as f:
        json.dump(dict(training_set_kwargs=helpers.dataset_kwargs_for(env.data)), f)
    snapshot = write_snapshot(folder / 'network-snapshot-000004.pkl', G=helpers.real_tiny_generator())
    result = run(['--network', snapshot, '--metrics', 'fid1k_full', '--detector-dir', env.detector_dir, '--device', 'cpu'])
    assert result.exit_code == 0, result.output
    assert json_lines(result)[0]['results']['fid1k_full'] > 0
    assert os.path.isfile(folder / 'metric-fid1k_full.jsonl')


@pytest.fixture
def torch_defaults():
    """PyTorch's cuDNN defaults (TF32 on, benchmark off) and TF32 matmuls, restored afterwards (monkeypatch cannot
    restore torch's cuBLAS switch)."""
    previous_benchmark = torch.backends.cudnn.benchmark
    previous = misc.set_tf32(True)
    torch.backends.cudnn.benchmark = False
    yield
    misc.set_tf32(previous)
    torch.backends.cudnn.benchmark = previous_benchmark


def test_metrics_are_computed_without_tf32_and_with_cudnn_benchmark(tmp_path, env, monkeypatch, torch_defaults):
    """cuDNN's default would convolve in TF32 on a GPU; the scores are computed in float32, as training does."""
    seen = []
    calc_metric = metric_main.calc_metric

    def recording_calc_metric(*args, **kwargs):
        seen.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32,
                     torch.backends.cudnn.benchmark))
        return calc_metric(*args, **kwargs)
    monkeypatch.setattr(metric_main, 'calc_metric', recording_calc_metric)
    snapshot = write_run_dir(tmp_path / 'run', env.data)
    result = run(['--network', snapshot, '--metrics', 'kid1k', '--detector-dir', env.detector_dir, '--device', 'cpu'])
    assert result.exit_code == 0, result.output
    assert seen == [(False, False, True)]
