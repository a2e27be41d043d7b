"""A training run that does not surprise: CPU precision, defaults, names that never overwrite, fail-fast checks, progress."""

import json
import os

import pytest
import torch
from click.testing import CliRunner

import dnnlib
import train
from tests.train_helpers import TINY_ARGS, tiny_config, write_image_folder
from training import training_loop
from training.cli import config as run_config
from training.cli import launch as train_launch
from training.run import report as run_report
from training.cli import resume_source
from training.run import resume as run_resume
from training.run import snapshot as run_snapshot

NO_CUDA = not torch.cuda.is_available()
ARGS_WITHOUT_FP32 = [arg for arg in TINY_ARGS if arg != '--fp32']


@pytest.fixture(scope='module')
def data16(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp('data') / 'tiny16', num_images=8, resolution=16)


def cli(tmp_path, data, *args):
    return CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', f'--data={data}', *args])


def error_lines(result):
    return [line for line in result.output.splitlines() if line.startswith('Error:')]


def files_written(monkeypatch):
    """Record the path of every file written through dnnlib.util.atomic_write (every file a run writes)."""
    paths = []
    real = dnnlib.util.atomic_write

    def recording(path, *args, **kwargs):
        paths.append(os.path.basename(os.fspath(path)))
        return real(path, *args, **kwargs)
    monkeypatch.setattr(dnnlib.util, 'atomic_write', recording)
    return paths

#----------------------------------------------------------------------------
# CPU precision.


def test_cpu_run_turns_the_presets_fp16_layers_off_with_one_notice(tmp_path, data16):
    result = cli(tmp_path, data16, *ARGS_WITHOUT_FP32, '--cfg=paper256', '--dry-run')
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)
    assert config['G_kwargs']['synthesis_kwargs']['num_fp16_res'] == config['D_kwargs']['num_fp16_res'] == 0
    assert config['G_kwargs']['synthesis_kwargs']['conv_clamp'] is config['D_kwargs']['conv_clamp'] is None
    assert result.stderr.count('fp16 layers off on the CPU') == 1
    assert not config['run_dir'].endswith('-fp32')  # The CPU default is not an override.


def test_explicit_fp32_0_on_cpu_keeps_the_presets_fp16_layers(tmp_path, data16):
    result = cli(tmp_path, data16, *ARGS_WITHOUT_FP32, '--cfg=paper256', '--fp32=0', '--dry-run')
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)
    assert config['G_kwargs']['synthesis_kwargs']['num_fp16_res'] == config['D_kwargs']['num_fp16_res'] == 4
    assert config['D_kwargs']['conv_clamp'] == 256 and 'fp16 layers off' not in result.stderr


def test_cuda_run_keeps_the_presets_fp16_layers(tmp_path, data16):
    notes = []
    options = dict(outdir=str(tmp_path), data=data16, cfg='paper256', metrics='none', device='cuda', workers=0)
    config = run_config.resolve_config(options, cuda_available=True, notes=notes)
    assert config.G_kwargs.synthesis_kwargs.num_fp16_res == 4 and config.G_kwargs.synthesis_kwargs.conv_clamp == 256
    assert not any('fp16' in note for note in notes)

#----------------------------------------------------------------------------
# Defaults and --dry-run checks.


@pytest.mark.parametrize('cores, processes, workers', [(1, 1, 0), (2, 1, 1), (3, 1, 2), (4, 1, 3), (64, 1, 3),
                                                        (2, 2, 0), (8, 2, 3), (8, 4, 1)])
def test_default_workers_leave_a_core_per_process_and_stay_at_most_three(cores, processes, workers):
    assert run_config.default_workers(cores, processes) == workers


def test_default_workers_never_exceed_the_cores_so_pytorch_does_not_warn(tmp_path, data16, monkeypatch):
    # PyTorch's DataLoader warns when num_workers exceeds the cores in the process's affinity mask.
    args = [arg for arg in TINY_ARGS if not arg.startswith('--workers')]
    for cores in (1, 2, 8):
        monkeypatch.setattr(run_config, 'available_cores', lambda cores=cores: cores)
        result = cli(tmp_path, data16, *args, '--dry-run')
        workers = json.loads(result.stdout)['data_loader_kwargs']['num_workers']
        assert workers == run_config.default_workers(cores, 1) and workers < cores


@pytest.mark.skipif(not NO_CUDA, reason='needs a machine without CUDA')
def test_gpus_without_a_gpu_is_one_line_unless_device_cpu_is_given(tmp_path, data16):
    args = [arg for arg in TINY_ARGS if arg not in ('--device=cpu', '--batch=4')] + ['--batch=8', '--gpus=8', '--dry-run']
    refused = cli(tmp_path, data16, *args)
    assert refused.exit_code == 2 and len(error_lines(refused)) == 1
    assert '--gpus=8: no CUDA device is available; add --device=cpu' in error_lines(refused)[0]
    allowed = cli(tmp_path, data16, *args, '--device=cpu')
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout)['num_processes'] == 8


def test_preset_for_another_resolution_warns_on_stderr_and_suggests_auto(tmp_path, data16):
    result = cli(tmp_path, data16, *TINY_ARGS, '--cfg=paper1024', '--dry-run')
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith('Warning:')]
    assert len(warnings) == 1
    assert '--cfg=paper1024 is meant for 1024x1024 data, this dataset is 16x16' in warnings[0] and '--cfg=auto' in warnings[0]
    fitting = cli(tmp_path, data16, *TINY_ARGS, '--cfg=auto', '--dry-run')
    assert 'Warning:' not in fitting.stderr

#----------------------------------------------------------------------------
# Snapshot grid.


@pytest.mark.parametrize('shape, num_images, grid', [
    ([3, 32, 32], 50000, (12, 8)),      # stylegan2-ada would draw 32 x 32 = 1024 images.
    ([3, 256, 256], 50000, (7, 4)),
    ([3, 1024, 1024], 50000, (2, 2)),
    ([3, 32, 32], 64, (8, 8)),          # No more cells than images.
    ([3, 16, 16], 8, (2, 4)),
    ([1, 32, 32], 1, (1, 1)),
])
def test_grid_is_sized_to_the_resolution_and_the_dataset(shape, num_images, grid):
    assert run_report.grid_shape(shape, num_images) == grid


def test_grid_option_chooses_columns_and_rows(tmp_path, data16):
    result = cli(tmp_path, data16, *TINY_ARGS, '--grid=3x2', '--dry-run')
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)['grid_size'] == [3, 2]


@pytest.mark.parametrize('grid', ['3', '0x2', '3x2x1', 'axb', '65x1'])
def test_bad_grid_is_a_one_line_error_naming_the_accepted_form(tmp_path, data16, grid):
    result = cli(tmp_path, data16, *TINY_ARGS, f'--grid={grid}', '--dry-run')
    assert result.exit_code == 2 and len(error_lines(result)) == 1
    assert f'--grid={grid}: expected COLSxROWS with whole numbers from 1 to 64' in error_lines(result)[0]

#----------------------------------------------------------------------------
# Fail fast: detectors and room for a snapshot.


def test_missing_metric_detector_stops_before_the_run_naming_detector_dir_and_metrics_none(tmp_path, data16, cache_dir,
                                                                                          no_downloads):
    args = [arg for arg in TINY_ARGS if not arg.startswith('--metrics')]
    result = cli(tmp_path, data16, *args, '--metrics=fid1k_full')
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # Not an uncaught exception.
    assert len(error_lines(result)) == 1
    line = error_lines(result)[0]
    assert line.startswith('Error: --metrics=fid1k_full: feature detector inception-2015-12-05.pt')
    assert '--detector-dir' in line and '--metrics=none' in line
    assert not (tmp_path / 'runs').exists()


def test_detector_check_asks_for_each_file_the_metrics_need(tmp_path, data16, cache_dir, no_downloads):
    from tests.metrics_helpers import write_detector
    from metrics import detectors
    folder = tmp_path / 'detectors'
    write_detector(folder, detectors.INCEPTION.file_name)
    args = [arg for arg in TINY_ARGS if not arg.startswith('--metrics')] + [f'--detector-dir={folder}']
    assert cli(tmp_path, data16, *args, '--metrics=fid1k_full,kid1k_full', '--dry-run').exit_code == 0
    result = cli(tmp_path, data16, *args, '--metrics=fid1k_full,pr1k3_full')
    assert result.exit_code == 1 and len(error_lines(result)) == 1
    assert error_lines(result)[0].startswith(f'Error: --metrics=fid1k_full,pr1k3_full: feature detector vgg16.pt (about '
                                             f'530 MB) is not in --detector-dir {folder} (nothing is downloaded when a '
                                             f'folder is given); get it from {detectors.VGG16.url}')
    assert 'python -m metrics.detectors fetch DIR' in error_lines(result)[0]
    assert not (tmp_path / 'runs').exists()  # Refused before anything started.


def test_a_dry_run_offline_warns_which_metrics_lack_a_detector(tmp_path, data16, cache_dir, no_downloads):
    args = [arg for arg in TINY_ARGS if not arg.startswith('--metrics')] + [f'--detector-dir={tmp_path}', '--dry-run']
    result = cli(tmp_path, data16, *args, '--metrics=fid1k_full,fd_dinov2_1k_full')
    assert result.exit_code == 0 and error_lines(result) == [], result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith('Warning: --metrics=')]
    assert len(warnings) == 1 and 'inception-2015-12-05.pt' in warnings[0] and 'dinov2_vitl14_pretrain.pth' in warnings[0]


def test_every_missing_detector_is_named_in_one_line(tmp_path, data16, cache_dir, no_downloads):
    from metrics import detectors
    args = [arg for arg in TINY_ARGS if not arg.startswith('--metrics')] + [f'--detector-dir={tmp_path}']
    result = cli(tmp_path, data16, *args, '--metrics=fid1k_full,pr1k3_full,fd_dinov2_1k_full')
    assert result.exit_code == 1 and len(error_lines(result)) == 1
    line = error_lines(result)[0]
    assert '3 detector files are missing: ' in line
    for detector in (detectors.INCEPTION, detectors.VGG16, detectors.DINOV2):
        assert f'feature detector {detector.file_name} ({detector.size}) is not in --detector-dir' in line
        assert detector.url in line


def test_outdir_without_room_for_a_snapshot_is_one_line_before_the_run(tmp_path, data16, monkeypatch):
    monkeypatch.setattr(dnnlib.util, 'free_bytes', lambda path: 1000)
    result = cli(tmp_path, data16, *TINY_ARGS)
    assert result.exit_code == 1 and len(error_lines(result)) == 1
    line = error_lines(result)[0]
    assert line.startswith(f'Error: --outdir={tmp_path / "runs"}: 1.0 kB free on its disk, but one snapshot')
    assert 'needs about' in line and 'choose another --outdir' in line
    assert not (tmp_path / 'runs').exists()


def test_snapshot_size_estimate_counts_three_networks_and_two_adam_moments():
    G_kwargs, D_kwargs = run_config.preset_network_kwargs('cifar', 32)
    estimate = run_snapshot.estimated_snapshot_bytes(G_kwargs, D_kwargs, 32)
    assert 500e6 < estimate < 800e6  # 20M parameters in G and 21M in D.

#----------------------------------------------------------------------------
# Snapshot names.


def test_names_keep_stylegan2_ada_form_and_add_images_only_when_taken():
    assert run_snapshot.snapshot_name(4032) == 'network-snapshot-000004.pkl'
    assert run_snapshot.snapshot_name(12, taken=lambda name: True) == 'network-snapshot-000000_012img.pkl'
    assert run_snapshot.progress_name('fakes', 1500, '.png', lambda name: name == 'fakes000001.png') == \
        'fakes000001_500img.png'
    names = ['network-snapshot-000000.pkl', 'network-snapshot-000000_012img.pkl', 'network-snapshot-000001.pkl',
             'network-snapshot-000001_500img.pkl', 'network-snapshot-000002.pkl']
    assert sorted(names) == names  # `ls | sort` lists them in training order.


def test_sub_kimg_snapshots_all_survive_and_no_file_is_written_twice(tmp_path, data16, monkeypatch):
    written = files_written(monkeypatch)
    run_dir = train_launch.start(tiny_config(tmp_path / 'runs', data16, kimg=0.024, tick=0.008), env={})
    snapshots = sorted(f for f in os.listdir(run_dir) if f.startswith('network-snapshot-') and f.endswith('.pkl'))
    assert snapshots == ['network-snapshot-000000.pkl', 'network-snapshot-000000_012img.pkl',
                         'network-snapshot-000000_020img.pkl', 'network-snapshot-000000_024img.pkl']
    for name in snapshots:
        state = run_resume.load_resume_state(run_resume.resume_state_path(os.path.join(run_dir, name)))
        assert state['snapshot']['name'] == name
    fakes = sorted(f for f in os.listdir(run_dir) if f.startswith('fakes0'))
    assert fakes == ['fakes000000.png', 'fakes000000_012img.png', 'fakes000000_020img.png', 'fakes000000_024img.png']
    rewritten = {name for name in written if written.count(name) > 1}
    assert rewritten == {'stats.jsonl'}  # Appended to, one line per tick; everything else is written once.


def test_resume_latest_takes_the_snapshot_with_the_most_images(tmp_path):
    run_dir = tmp_path / 'runs' / '00000-run'
    run_dir.mkdir(parents=True)
    (run_dir / 'training_options.json').write_text('{}')
    for name in ('network-snapshot-000000', 'network-snapshot-000000_012img', 'network-snapshot-000000_500img',
                 'network-snapshot-000001', 'network-snapshot-000001_008img'):
        (run_dir / f'{name}.pkl').write_bytes(b'')
        (run_dir / f'{name}.resume.pt').write_bytes(b'')
    newest = resume_source.find_latest_snapshot(str(tmp_path / 'runs'), log=lambda text: None)
    assert os.path.basename(newest) == 'network-snapshot-000001_008img.pkl'
    order = [os.path.basename(p) for p in resume_source._snapshot_pairs(str(tmp_path / 'runs'))]  # pylint: disable=protected-access
    assert order == ['network-snapshot-000001_008img.pkl', 'network-snapshot-000001.pkl',
                     'network-snapshot-000000_500img.pkl', 'network-snapshot-000000_012img.pkl',
                     'network-snapshot-000000.pkl']

#----------------------------------------------------------------------------
# Progress: ETA, the end message, TensorBoard.


def test_eta_is_the_remaining_images_at_the_pace_so_far():
    progress = dnnlib.EasyDict(cur_nimg=3000)
    timing = dnnlib.EasyDict(start=100.0, tick_end=160.0, start_nimg=1000)
    assert run_report.eta_seconds(progress, timing, total_kimg=5) == pytest.approx(60)  # 2 kimg in 60 s, 2 left.
    assert run_report.eta_seconds(dnnlib.EasyDict(cur_nimg=5000), timing, total_kimg=5) == 0


def test_training_done_comes_after_the_final_grid_and_snapshot(tmp_path, data16, monkeypatch):
    seen = {}
    real_log = training_loop.Run.log

    def log(run, text):
        if text == 'Training done.':
            seen['files'] = set(os.listdir(run.run_dir))
        real_log(run, text)
    monkeypatch.setattr(training_loop.Run, 'log', log)
    run_dir = train_launch.start(tiny_config(tmp_path / 'runs', data16, kimg=0.012, tick=0.008), env={})
    assert {'network-snapshot-000000_012img.pkl', 'network-snapshot-000000_012img.resume.pt',
            'fakes000000_012img.png'} <= seen['files']
    log_text = open(os.path.join(run_dir, 'log.txt')).read()
    assert log_text.rstrip().endswith('Training done.') and ' eta ' in log_text


def _tensorboard_events(run_dir):
    from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=import-outside-toplevel
    events = event_accumulator.EventAccumulator(run_dir, size_guidance={event_accumulator.IMAGES: 0,
                                                                         event_accumulator.SCALARS: 0})
    events.Reload()
    return events


def test_metric_run_reports_curves_grids_and_the_best_snapshot(tmp_path, data16, monkeypatch):
    from tests.metrics_helpers import write_detector_dir
    monkeypatch.setenv('SQUEEZEGAN_DETECTOR_DIR', write_detector_dir(tmp_path / 'detectors'))
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    config = tiny_config(tmp_path / 'runs', data16, kimg=0.012, tick=0.008, metrics='fid1k_full,pr1k3_full', aug='ada')
    run_dir = train_launch.start(config, env={})

    events = _tensorboard_events(run_dir)
    for tag in ('Metrics/fid1k_full', 'Metrics/pr1k3_full_precision', 'Progress/augment', 'Timing/sec_per_kimg',
                'Loss/G/loss'):
        assert [event.step for event in events.Scalars(tag)] == [4, 12], tag  # Steps are images shown.
    assert all(event.wall_time > 1e9 for event in events.Scalars('Timing/sec_per_kimg'))  # Real time.
    grids = events.Images('Fakes')
    assert [event.step for event in grids] == [0, 4, 12]
    assert len({(event.width, event.height) for event in grids}) == 1

    lines = [json.loads(line) for line in open(os.path.join(run_dir, 'metric-fid1k_full.jsonl'))]
    best = json.load(open(os.path.join(run_dir, 'best.json')))
    best_line = min(lines, key=lambda line: line['results']['fid1k_full'])
    assert best['fid1k_full']['value'] == best_line['results']['fid1k_full'] and best['fid1k_full']['better'] == 'lower'
    assert best['fid1k_full']['snapshot_pkl'] == best_line['snapshot_pkl']
    assert os.path.isfile(os.path.join(run_dir, best['fid1k_full']['snapshot_pkl']))
    assert best['pr1k3_full_recall']['better'] == 'higher'


@pytest.mark.parametrize('result_key, direction', [('fid50k_full', 'lower'), ('kid50k_full', 'lower'),
                                                    ('fd_dinov2_50k_full', 'lower'),
                                                    ('ppl2_wend', 'lower'), ('is50k_mean', 'higher'),
                                                    ('pr50k3_full_precision', 'higher'), ('pr50k3_full_recall', 'higher'),
                                                    ('is50k_std', None)])
def test_best_direction_per_result_key(result_key, direction):
    assert run_report.better_direction(result_key) == direction


def test_best_keeps_the_earlier_snapshot_when_a_later_one_is_worse():
    best = {}
    assert run_report.update_best(best, {'fid50k_full': 10.0, 'is50k_std': 0.1}, 'a.pkl', 1000) == ['fid50k_full']
    assert run_report.update_best(best, {'fid50k_full': 12.0}, 'b.pkl', 2000) == []
    assert run_report.update_best(best, {'fid50k_full': 9.0}, 'c.pkl', 3000) == ['fid50k_full']
    assert best == {'fid50k_full': dict(value=9.0, better='lower', snapshot_pkl='c.pkl', kimg=3.0)}

#----------------------------------------------------------------------------
# A metric that fails mid-run.


def _fail_detector(monkeypatch, tmp_path):
    from metrics import detectors
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.setenv(detectors.DETECTOR_DIR_ENV, str(tmp_path / 'deleted-detectors'))
    monkeypatch.setattr(dnnlib.util, 'open_url', lambda url, *args, **kwargs: (_ for _ in ()).throw(OSError('no network')))


def _fail_write(monkeypatch, tmp_path):
    from metrics import metric_main
    from tests.metrics_helpers import write_detector_dir
    monkeypatch.setenv('SQUEEZEGAN_DETECTOR_DIR', write_detector_dir(tmp_path / 'detectors'))
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))

    def full_disk(*args, **kwargs):
        raise dnnlib.util.WriteError('cannot write metric-fid1k_full.jsonl: the disk is full')
    monkeypatch.setattr(metric_main, 'report_metric', full_disk)


@pytest.mark.parametrize('fault, message', [(_fail_detector, 'feature detector inception-2015-12-05.pt'),
                                            (_fail_write, 'cannot write metric-fid1k_full.jsonl: the disk is full')])
def test_a_metric_failing_mid_run_is_one_log_line_and_training_goes_on(tmp_path, data16, monkeypatch, fault, message):
    fault(monkeypatch, tmp_path)
    run_dir = train_launch.start(tiny_config(tmp_path / 'runs', data16, kimg=0.012, tick=0.008, metrics='fid1k_full'),
                                 env={})
    log = open(os.path.join(run_dir, 'log.txt')).read().splitlines()
    failures = [line for line in log if line.startswith('Metric fid1k_full failed, training goes on: ')]
    assert len(failures) == 2 and message in failures[0]  # One per snapshot.
    assert log[-1] == 'Training done.' and 'network-snapshot-000000_012img.pkl' in os.listdir(run_dir)
