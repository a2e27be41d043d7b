"""train.py command line: --dry-run prints the resolved config; bad input exits non-zero with one line and no traceback."""

import json
import os

import pytest
from click.testing import CliRunner

import train
from tests.train_helpers import TINY_ARGS, write_image_folder


@pytest.fixture(scope='module')
def data16(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp('data') / 'tiny16', num_images=4, resolution=16)


def run_cli(args):
    return CliRunner().invoke(train.main, args, catch_exceptions=False)


def test_dry_run_prints_the_resolved_config_and_creates_nothing(tmp_path, data16):
    outdir = tmp_path / 'runs'
    result = run_cli([f'--outdir={outdir}', f'--data={data16}', *TINY_ARGS, '--g-arch=squeeze', '--dry-run'])
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)
    assert config['G_kwargs']['synthesis_kwargs']['architecture'] == 'squeeze'
    assert os.path.basename(config['run_dir']) == '00000-tiny16-auto1-squeeze-map2-cbase512-cmax32-kimg0.024-batch4-noaug-fp32'
    assert not outdir.exists()


def test_dry_run_shows_overrides_of_the_preset(tmp_path, data16):
    result = run_cli([f'--outdir={tmp_path}', f'--data={data16}', *TINY_ARGS, '--cfg=paper256', '--gamma=0.25', '--dry-run'])
    config = json.loads(result.stdout)
    assert config['loss_kwargs']['r1_gamma'] == 0.25 and config['ema_kimg'] == 20


@pytest.mark.parametrize('args, message', [
    (['--cfg=bogus'], '--cfg=bogus'),
    (['--cond'], '--cond'),
    (['--g-arch=wide'], '--g-arch=wide: must be one of orig, skip, resnet, squeeze'),
    (['--aug=noaug', '--target=0.7'], '--target=0.7'),
])
def test_bad_input_exits_with_a_one_line_usage_error(tmp_path, data16, args, message):
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path}', f'--data={data16}', *TINY_ARGS, *args, '--dry-run'])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output  # No uncaught exception.
    error_lines = [line for line in result.output.splitlines() if line.startswith('Error:')]
    assert len(error_lines) == 1 and message in error_lines[0]


def test_missing_data_path_is_named_in_the_error(tmp_path):
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path}', f'--data={tmp_path}/none.zip', '--dry-run', '--device=cpu'])
    assert result.exit_code == 2 and 'none.zip' in result.output and 'not found' in result.output


@pytest.mark.parametrize('switch, xflip', [('--mirror', True), ('--mirror=1', True), ('--mirror=0', False)])
def test_switches_accept_stylegan2_ada_values_and_bare_flags(tmp_path, data16, switch, xflip):
    result = run_cli([f'--outdir={tmp_path}', f'--data={data16}', *TINY_ARGS, switch, '--dry-run'])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)['training_set_kwargs']['xflip'] is xflip


def test_unreadable_resume_file_is_a_one_line_error(tmp_path, data16):
    bad = tmp_path / 'broken.pkl'
    bad.write_bytes(b'not a pickle')
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path}/runs', f'--data={data16}', *TINY_ARGS, f'--resume={bad}'])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith('Error:')]
    assert len(error_lines) == 1 and 'broken.pkl' in error_lines[0]


@pytest.mark.parametrize('value, message', [
    ('cuda', 'Error: SQUEEZEGAN_OPS=cuda: this run has no CUDA device (it trains on cpu); unset SQUEEZEGAN_OPS or set it '
             'to auto or ref'),
    ('fast', 'Error: SQUEEZEGAN_OPS=fast: accepted values are auto, cuda, ref'),
])
def test_squeezegan_ops_that_cannot_hold_stops_at_start_with_one_line(tmp_path, data16, monkeypatch, value, message):
    monkeypatch.setenv('SQUEEZEGAN_OPS', value)
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', f'--data={data16}', *TINY_ARGS])
    assert result.exit_code == 1
    assert [line for line in result.output.splitlines() if line.startswith('Error:')] == [message]
    assert not (tmp_path / 'runs').exists()


@pytest.mark.parametrize('value', ['auto', 'ref'])
def test_dry_run_and_the_training_log_name_the_path_each_op_takes(tmp_path, data16, monkeypatch, value):
    monkeypatch.setenv('SQUEEZEGAN_OPS', value)
    why = 'SQUEEZEGAN_OPS=ref' if value == 'ref' else 'the kernel runs on CUDA tensors only; this is cpu'
    expected = f'Ops on cpu (SQUEEZEGAN_OPS={value}): bias_act: reference ({why}); upfirdn2d: reference ({why})'
    dry = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', f'--data={data16}', *TINY_ARGS, '--dry-run'])
    assert dry.exit_code == 0 and expected in dry.output.splitlines()
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', f'--data={data16}', *TINY_ARGS, '--kimg=0.004'])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / 'runs' / os.listdir(tmp_path / 'runs')[0]
    assert expected in (run_dir / 'log.txt').read_text().splitlines()
