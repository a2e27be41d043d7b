"""Metric progress: images of the real and generated sets with the expected total, on stderr, in few lines."""

import io
import json
import os
import pickle

import pytest
from click.testing import CliRunner

import calc_metrics
from metrics import detectors
from metrics import metric_main
from metrics import metric_utils
from tests import metrics_helpers as helpers


def _options(dataset_kwargs, detector_dir, progress):
    return metric_utils.MetricOptions(G=helpers.StandInGenerator(), dataset_kwargs=dataset_kwargs, device='cpu',
                                      detector_dir=detector_dir, progress=progress, cache=False)


def test_feature_stats_report_items_of_the_expected_total(tmp_path, cache_dir, no_downloads):
    out = io.StringIO()
    opts = _options(helpers.write_image_folder(tmp_path / 'data', num_images=12),
                    helpers.write_detector_dir(tmp_path / 'detectors'), metric_utils.ProgressMonitor(show=True, stream=out))
    metric_utils.compute_feature_stats_for_dataset(opts, detectors.INCEPTION, dict(return_features=True),
                                                   capture_mean_cov=True, batch_size=4)
    metric_utils.compute_feature_stats_for_generator(opts, detectors.INCEPTION, dict(return_features=True), max_items=200,
                                                     capture_mean_cov=True, batch_size=8)
    lines = out.getvalue().splitlines()
    real = [line for line in lines if line.startswith('real images  ')]
    generated = [line for line in lines if line.startswith('generated images  ')]
    assert len(real) + len(generated) == len(lines)
    assert real[-1].startswith('real images  12/12 (100%)') and 'done in' in real[-1]
    assert generated[-1].startswith('generated images  200/200 (100%)') and 'done in' in generated[-1]
    assert len(generated) <= 11


def test_metrics_print_nothing_without_a_progress_monitor(tmp_path, cache_dir, no_downloads, capsys):
    dataset_kwargs = helpers.write_image_folder(tmp_path / 'data', num_images=8)
    result = metric_main.calc_metric('fid1k_full', G=helpers.StandInGenerator(), dataset_kwargs=dataset_kwargs,
                                     device='cpu', detector_dir=helpers.write_detector_dir(tmp_path / 'detectors'))
    assert result.results.fid1k_full > 0
    assert capsys.readouterr().err == ''


@pytest.fixture
def snapshot_in_run(tmp_path, cache_dir):
    data = helpers.write_image_folder(tmp_path / 'data', num_images=20).path
    os.makedirs(tmp_path / 'run')
    with open(tmp_path / 'run' / 'training_options.json', 'w') as f:
        json.dump(dict(training_set_kwargs=helpers.dataset_kwargs_for(data)), f)
    G = helpers.StandInGenerator()
    path = tmp_path / 'run' / 'network-snapshot-000000.pkl'
    with open(path, 'wb') as f:
        pickle.dump(dict(G=G, D=None, G_ema=G, augment_pipe=None, training_set_kwargs=None), f)
    return ['--network', str(path), '--metrics', 'fid1k_full', '--device', 'cpu',
            '--detector-dir', helpers.write_detector_dir(tmp_path / 'detectors')]


def test_calc_metrics_reports_real_and_generated_totals_on_stderr(snapshot_in_run):
    result = CliRunner().invoke(calc_metrics.main, snapshot_in_run, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert any(line.startswith('fid1k_full: real images  20/20 (100%)') for line in lines), result.stderr
    assert any(line.startswith('fid1k_full: generated images  1000/1000 (100%)') for line in lines), result.stderr
    assert len(lines) <= 22
    assert [json.loads(line)['metric'] for line in result.stdout.splitlines()] == ['fid1k_full']


def test_calc_metrics_quiet_prints_no_progress(snapshot_in_run):
    result = CliRunner().invoke(calc_metrics.main, snapshot_in_run + ['--quiet'], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stderr == ''
