"""--reg-type end to end on CPU: options, one-line errors, a tiny run each, exact resume and loading with a decoder."""

import json
import os
import pickle

import pytest
import torch
from click.testing import CliRunner

import train
from tests.metrics_helpers import write_lpips_weight_dir
from tests.train_helpers import TINY_ARGS, final_snapshot_tensors, tiny_config, write_image_folder
from training import export
from training.cli import launch as train_launch

SQUEEZE = ['--g-arch=squeeze', '--squeeze-ratio=4']


@pytest.fixture(scope='module')
def data16(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp('data') / 'tiny16', num_images=8, resolution=16)


@pytest.fixture(scope='module')
def lpips_dir(tmp_path_factory):
    return write_lpips_weight_dir(tmp_path_factory.mktemp('lpips'))[0]


def _train(tmp_path, data, *args):
    return CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', f'--data={data}', *TINY_ARGS, *args])


def _last_stats(run_dir):
    return json.loads(open(os.path.join(run_dir, 'stats.jsonl')).read().splitlines()[-1])


def test_dry_run_shows_the_ggdr_decoder_and_term(tmp_path, data16):
    result = _train(tmp_path, data16, '--reg-type=ggdr', '--dry-run')
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)
    assert config['D_kwargs']['decoder_res'] == 8  # 16x16 data: a quarter, at least 8.
    assert config['loss_kwargs']['extra_terms'] == [{'class_name': 'training.regularizers.GGDRLoss', 'resolution': 8,
                                                      'weight': 10.0}]
    assert '-ggdr' in config['run_desc']


@pytest.mark.parametrize('args, message', [
    (['--reg-type=ggdr', '--ggdr-res=16'], '--ggdr-res=16: must be a power of two from 8 to half the image resolution (16); accepted here: 8'),
    (['--reg-type=ggdr', '--ggdr-res=12'], '--ggdr-res=12: must be a power of two'),
    (['--ggdr-res=8'], '--ggdr-res applies to --reg-type=ggdr, not --reg-type=none'),
    (['--reg-type=glead', '--ggdr-res=8'], '--ggdr-res applies to --reg-type=ggdr, not --reg-type=glead'),
    (['--reg-type=ggdr', '--ggdr-weight=nan'], '--ggdr-weight=nan: must be a positive finite number'),
    (['--reg-type=ggdr', '--cbase=512', '--cmax=32', '--d-arch=resnet', '--ggdr-res=8', '--g-arch=skip'], None),
])
def test_bad_regulariser_options_are_one_line_usage_errors(tmp_path, data16, args, message):
    result = _train(tmp_path, data16, *args, '--dry-run')
    if message is None:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2 and message in result.output, result.output
    assert isinstance(result.exception, SystemExit)  # Not an uncaught exception.


def test_glead_without_lpips_weights_is_one_line_before_anything_starts(tmp_path, data16, cache_dir, no_downloads):
    result = _train(tmp_path, data16, '--reg-type=glead', '--dry-run')
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # Not an uncaught exception.
    error = [line for line in result.output.splitlines() if line.startswith('Error:')]
    assert len(error) == 1 and '--reg-type=glead' in error[0] and 'alex.pth' in error[0] and '--detector-dir' in error[0]
    assert not (tmp_path / 'runs').exists()


@pytest.mark.parametrize('reg_args, stats', [
    (['--reg-type=ggdr'], ['Loss/D/ggdr']),
    (['--reg-type=glead'], ['Loss/D/glead_real', 'Loss/D/glead_fake']),
    (['--reg-type=glead', '--glead-fake=feature', '--glead-real-in-r1=0'], ['Loss/D/glead_real', 'Loss/D/glead_fake']),
])
def test_tiny_squeeze_run_trains_with_each_regulariser(tmp_path, data16, lpips_dir, reg_args, stats):
    result = _train(tmp_path, data16, *SQUEEZE, *reg_args, f'--detector-dir={lpips_dir}', '--kimg=0.016')
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / 'runs' / os.listdir(tmp_path / 'runs')[0]
    last = _last_stats(run_dir)
    for name in stats:
        assert name in last and last[name]['num'] > 0 and last[name]['mean'] >= 0
    with open(run_dir / 'network-snapshot-000000.pkl', 'rb') as f:
        D = pickle.load(f)['D']
    assert D.decoder is not None and (D.glead is not None) == ('--reg-type=glead' in reg_args)


def test_resume_with_a_decoder_is_bit_exact(tmp_path, data16):
    def config_for(outdir, **overrides):
        return tiny_config(outdir, data16, aug='ada', augpipe='bgc', g_arch='squeeze', squeeze_ratio=4,
                           reg_type='ggdr', tick=0.008, **overrides)
    uninterrupted = train_launch.start(config_for(tmp_path / 'a', kimg=0.016), env={})
    train_launch.start(config_for(tmp_path / 'b', kimg=0.008), env={})
    resumed = train_launch.start(config_for(tmp_path / 'b', kimg=0.016, resume='latest'), env={})
    expected, actual = final_snapshot_tensors(uninterrupted), final_snapshot_tensors(resumed)
    assert any(name.startswith('D.decoder.') for name in expected)
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name


def test_ggdr_snapshot_loads_for_generate_and_export_and_a_plain_snapshot_transfers_into_ggdr(tmp_path, data16):
    plain = _train(tmp_path, data16, '--kimg=0.004')
    assert plain.exit_code == 0, plain.output
    plain_pkl = tmp_path / 'runs' / sorted(os.listdir(tmp_path / 'runs'))[0] / 'network-snapshot-000000.pkl'
    ggdr = _train(tmp_path, data16, '--kimg=0.004', '--reg-type=ggdr', f'--resume={plain_pkl}')
    assert ggdr.exit_code == 0, ggdr.output  # Only D's decoder is new: no --transfer needed.
    assert 'the others keep their fresh initialisation' in ggdr.output
    ggdr_pkl = tmp_path / 'runs' / sorted(os.listdir(tmp_path / 'runs'))[1] / 'network-snapshot-000000.pkl'
    networks = export.load_network(str(ggdr_pkl), device='cpu')
    model = tmp_path / 'model.pt'
    export.save_weights_only(networks, str(model), source=str(ggdr_pkl))
    reloaded = export.load_network(str(model), device='cpu')
    assert reloaded['D'].decoder is not None
    for name, tensor in networks['D'].state_dict().items():
        assert torch.equal(tensor, reloaded['D'].state_dict()[name]), name
    import generate  # pylint: disable=import-outside-toplevel
    result = CliRunner().invoke(generate.generate_images, [f'--network={ggdr_pkl}', '--seeds=0', f'--outdir={tmp_path / "out"}',
                                                           '--device=cpu'])
    assert result.exit_code == 0, result.output
    assert os.listdir(tmp_path / 'out') == ['seed0000.png']
