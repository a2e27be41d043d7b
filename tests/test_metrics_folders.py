"""calc_metrics.py on image folders and zips (--gen), with reference statistics (--ref-out, --ref, EDM2 pickles), and
repeated with different seeds (--repeats); what each result line says it used."""

import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch

from metrics import reference_stats
from tests import metrics_helpers as helpers
from tests.reference.record_dinov2 import seeded_state
from tests.test_metrics_cli import error_line, json_lines, run, write_snapshot


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    """Detectors (the ViT-S standing in for DINOv2 is 85 MB) and two image sets, written once for the module:
    no test writes into them, and a copy per test wrote 1.7 GB per run of the suite. Each test still gets an
    empty dnnlib cache of its own (tests/conftest.py)."""
    folder = tmp_path_factory.mktemp('metrics-folders')
    detector_dir = helpers.write_detector_dir(folder / 'detectors')
    from metrics import dinov2  # pylint: disable=import-outside-toplevel
    shapes = {key: list(value.shape) for key, value in dinov2.VisionTransformer('vits14').state_dict().items()}
    torch.save(seeded_state(shapes), os.path.join(detector_dir, 'dinov2_vitl14_pretrain.pth'))  # ViT-S stands in.
    return dict(real=helpers.write_image_folder(folder / 'real', num_images=20, seed=1).path,
                gen=helpers.write_image_folder(folder / 'gen', num_images=12, seed=2).path,
                detector_dir=detector_dir)


def _metrics(env, *args):
    result = run(['--detector-dir', env['detector_dir'], '--device', 'cpu', '--quiet', *args])
    assert result.exit_code == 0, result.output
    return {line['metric']: line for line in json_lines(result)}, result


def _zip_of(folder, path):
    with zipfile.ZipFile(path, 'w') as archive:
        for name in sorted(os.listdir(folder)):
            archive.write(os.path.join(folder, name), name)
    return str(path)


def test_a_folder_is_scored_with_every_image_whatever_the_name_says(env, tmp_path):
    lines, _ = _metrics(env, '--gen', env['gen'], '--data', env['real'], '--metrics', 'fid50k_full,kid1k,fd_dinov2_50k_full')
    fid = lines['fid50k_full']
    assert fid['num_gen'] == 12 and fid['num_real'] == 20 and fid['results']['fid50k_full'] > 0
    assert fid['detectors'] == {'inception-2015-12-05.pt': fid['detectors']['inception-2015-12-05.pt']}
    assert len(fid['detectors']['inception-2015-12-05.pt']) == 12
    assert lines['fd_dinov2_50k_full']['num_gen'] == 12 and 'dinov2_vitl14_pretrain.pth' in lines['fd_dinov2_50k_full']['detectors']
    zipped, _ = _metrics(env, '--gen', _zip_of(env['gen'], tmp_path / 'gen.zip'), '--data',
                         _zip_of(env['real'], tmp_path / 'real.zip'), '--metrics', 'fid50k_full')
    assert zipped['fid50k_full']['results'] == fid['results']


def test_a_folder_scored_against_itself_is_zero(env):
    lines, _ = _metrics(env, '--gen', env['real'], '--data', env['real'], '--metrics', 'fid50k_full')
    assert abs(lines['fid50k_full']['results']['fid50k_full']) < 1e-6


def test_fewer_images_than_features_warn_instead_of_refusing(env, tmp_path):
    few = helpers.write_image_folder(tmp_path / 'few', num_images=5, seed=3).path
    lines, result = _metrics(env, '--gen', few, '--data', env['real'], '--metrics', 'fid50k_full')
    assert lines['fid50k_full']['num_gen'] == 5
    assert 'Warning: fid: 5 images for 8 features; the covariance is rank-deficient' in result.stderr


def test_saved_reference_statistics_give_the_same_numbers_as_the_images(env, tmp_path):
    ref = tmp_path / 'real-ref.npz'
    result = run(['--data', env['real'], '--ref-out', ref, '--detector-dir', env['detector_dir'], '--device', 'cpu', '--quiet'])
    assert result.exit_code == 0, result.output
    assert json_lines(result)[0]['num_images'] == 20
    with np.load(ref, allow_pickle=False) as saved:
        assert sorted(saved.files) == ['dinov2_mu', 'dinov2_sigma', 'inception_mu', 'inception_sigma', 'num_images']
        assert saved['dinov2_sigma'].dtype == np.float64 and int(saved['num_images']) == 20
    with_images, _ = _metrics(env, '--gen', env['gen'], '--data', env['real'], '--metrics', 'fid50k_full,fd_dinov2_50k_full')
    with_ref, _ = _metrics(env, '--gen', env['gen'], '--ref', ref, '--metrics', 'fid50k_full,fd_dinov2_50k_full')
    for metric in ('fid50k_full', 'fd_dinov2_50k_full'):
        assert with_ref[metric]['results'][metric] == pytest.approx(with_images[metric]['results'][metric], rel=1e-9)
        assert with_ref[metric]['num_real'] is None


def test_edm2_reference_pickles_are_read_safely(env, tmp_path):
    ref = tmp_path / 'real-ref.npz'
    assert run(['--data', env['real'], '--ref-out', ref, '--detector-dir', env['detector_dir'], '--device', 'cpu',
                '--quiet']).exit_code == 0
    moments = reference_stats.load_reference(str(ref))
    edm2 = tmp_path / 'real-edm2.pkl'
    with open(edm2, 'wb') as f:  # EDM2's layout: {'fid': {'mu', 'sigma'}, 'fd_dinov2': {...}}.
        pickle.dump({key: dict(mu=moments[key][0], sigma=moments[key][1]) for key in ('fid', 'fd_dinov2')}, f)
    from_npz, _ = _metrics(env, '--gen', env['gen'], '--ref', ref, '--metrics', 'fd_dinov2_50k_full')
    from_pkl, _ = _metrics(env, '--gen', env['gen'], '--ref', edm2, '--metrics', 'fd_dinov2_50k_full')
    assert from_pkl['fd_dinov2_50k_full']['results'] == from_npz['fd_dinov2_50k_full']['results']
    hostile = tmp_path / 'hostile.pkl'
    hostile.write_bytes(b'cos\nsystem\n(S"touch ' + str(tmp_path / 'ran').encode() + b'"\ntR.')
    refused = run(['--gen', env['gen'], '--ref', hostile, '--metrics', 'fid50k_full', '--device', 'cpu'])
    assert refused.exit_code == 1 and 'not a reference statistics file (refusing to load os.system' in error_line(refused)
    assert not (tmp_path / 'ran').exists()


def test_repeats_report_mean_std_and_min_over_seeds(env, tmp_path):
    snapshot = write_snapshot(tmp_path / 'snap' / 'network-snapshot-000000.pkl')
    lines, _ = _metrics(env, '--network', snapshot, '--data', env['real'], '--metrics', 'fid1k_full', '--repeats', '3')
    repeats = lines['fid1k_full']['repeats']['fid1k_full']
    assert len(repeats['values']) == 3 and len(set(repeats['values'])) == 3  # Other seeds, other latents.
    assert repeats['mean'] == pytest.approx(np.mean(repeats['values'])) and repeats['min'] == min(repeats['values'])
    assert repeats['std'] == pytest.approx(np.std(repeats['values'])) and lines['fid1k_full']['results']['fid1k_full'] == repeats['mean']


@pytest.mark.parametrize('args, message', [
    (['--metrics=fid1k_full'], 'nothing to evaluate: give --network=PKL, --gen=FOLDER_OR_ZIP, or --data with --ref-out'),
    (['--network=x.pkl', '--gen={gen}'], 'give either --network'),
    (['--gen={gen}', '--data={real}', '--metrics=ppl2_wend'], '--metrics=ppl2_wend needs a network to generate with'),
    (['--gen={gen}', '--data={real}', '--repeats=2'], '--repeats=2 with --gen: a folder gives the same images'),
    (['--gen={gen}'], '--gen compares with real images: give --data=FOLDER_OR_ZIP or --ref=STATS'),
    (['--gen={gen}', '--ref={gen}/img0000.png', '--metrics=kid1k'], '--metrics=kid1k compares every image'),
    (['--gen={empty}', '--data={real}'], 'dataset {empty} holds no images (accepted extensions: .png'),
    (['--gen={tmp}/missing', '--data={real}'], '{tmp}/missing: not found; accepted: a folder or zip of images'),
    (['--ref-out={tmp}/ref.npz'], '--ref-out saves the statistics of --data alone'),
    (['--gen={gen}', '--ref={tmp}/none.npz'], '--ref={tmp}/none.npz: file not found'),
])
def test_inputs_that_cannot_work_are_one_line(env, tmp_path, args, message):
    (tmp_path / 'empty').mkdir()
    values = dict(gen=env['gen'], real=env['real'], empty=tmp_path / 'empty', tmp=tmp_path)
    result = run([arg.format(**values) for arg in args] + ['--device', 'cpu', '--detector-dir', env['detector_dir']])
    assert result.exit_code != 0 and message.format(**values) in error_line(result)


def test_reference_statistics_of_another_detector_are_one_line(env, tmp_path):
    ref = tmp_path / 'other.npz'
    reference_stats.save_reference(str(ref), {'fid': (np.zeros(4), np.eye(4))}, 10)
    result = run(['--gen', env['gen'], '--ref', ref, '--metrics', 'fid50k_full', '--device', 'cpu',
                  '--detector-dir', env['detector_dir']])
    assert result.exit_code == 1 and 'the two feature sets have 8 and 4 features' in error_line(result)
    result = run(['--gen', env['gen'], '--ref', ref, '--metrics', 'fd_dinov2_50k_full', '--device', 'cpu',
                  '--detector-dir', env['detector_dir']])
    assert result.exit_code == 1 and f'--ref={ref} holds no fd_dinov2 statistics (it holds fid)' in error_line(result)


def test_fetch_puts_every_detector_file_in_a_folder_and_keeps_existing_ones(tmp_path, monkeypatch):
    from metrics import detectors  # pylint: disable=import-outside-toplevel
    sources = tmp_path / 'server'
    sources.mkdir()
    for detector in detectors.ALL_DETECTORS:  # file:// URLs stand in for the public ones.
        (sources / detector.file_name).write_bytes(detector.file_name.encode() * 1000)
        monkeypatch.setitem(detector, 'url', (sources / detector.file_name).as_uri())
    target = tmp_path / 'detectors'
    target.mkdir()
    (target / 'vgg16.pt').write_bytes(b'mine')
    assert detectors.main(['fetch', str(target)]) == 0
    assert sorted(os.listdir(target)) == sorted(d.file_name for d in detectors.ALL_DETECTORS)
    assert (target / 'vgg16.pt').read_bytes() == b'mine'
    assert (target / 'dinov2_vitl14_pretrain.pth').read_bytes() == b'dinov2_vitl14_pretrain.pth' * 1000
    assert detectors.main(['fetch', str(target), 'nosuch.pt']) == 2


def test_sets_of_other_sizes_and_channels_are_resized_by_the_detector(env, tmp_path):
    large = helpers.write_image_folder(tmp_path / 'large', num_images=10, seed=4, resolution=32).path
    lines, _ = _metrics(env, '--gen', large, '--data', env['real'], '--metrics', 'fid50k_full,fd_dinov2_50k_full')
    assert lines['fid50k_full']['num_gen'] == 10 and lines['fd_dinov2_50k_full']['results']['fd_dinov2_50k_full'] > 0


def test_an_unreadable_image_in_a_set_is_one_line_naming_it(env, tmp_path):
    broken = helpers.write_image_folder(tmp_path / 'broken', num_images=4, seed=5).path
    with open(os.path.join(broken, 'img0002.png'), 'r+b') as f:
        f.seek(60)
        f.write(b'\0' * 40)  # Damaged pixel data behind a valid header.
    result = run(['--gen', broken, '--data', env['real'], '--metrics', 'fid50k_full', '--device', 'cpu',
                  '--detector-dir', env['detector_dir'], '--quiet'])
    assert result.exit_code == 1 and 'img0002.png' in error_line(result)
