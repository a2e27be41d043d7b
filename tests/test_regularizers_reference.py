"""GGDR's and GLeaD's terms and LPIPS compute what their public codes compute (numbers recorded by
tests/reference/record_regularizers.py), each term is linear in its weight, and every --ggdr-*/--glead-* flag changes
exactly the setting it names."""

import json
import types

import pytest
import torch

from tests.reference import record_glead_training as glead_path
from tests.reference import record_regularizers as recording
from tests.train_helpers import tiny_options, write_image_folder
from training import networks
from training.cli import config as run_config
from training.loss import StyleGAN2Loss
from training.regularizers import GGDRLoss, GLeaDLoss

with open(recording.OUT, encoding='utf-8') as _f:
    RECORDED = json.load(_f)

#----------------------------------------------------------------------------
# Held to the public codes.

@pytest.fixture(scope='module')
def seeded_lpips_dir(tmp_path_factory):
    """The weight files metrics/lpips.py reads, holding the recording's seeded AlexNet and per-layer weights."""
    folder = tmp_path_factory.mktemp('seeded-lpips')
    torch.save(recording.alexnet_state(), folder / 'alexnet-owt-7be5be79.pth')
    torch.save(recording.lin_state(), folder / 'alex.pth')
    return str(folder)


def _ctx(predicted, target):
    """What a term reads of a loss pass: D's decoder heads on the (augmented) image and G's features there."""
    heads = dict(features=predicted, feature=predicted, img=torch.zeros([predicted.shape[0], 3, 8, 8]),
                 w=torch.zeros([predicted.shape[0], 1, 8]))
    return types.SimpleNamespace(heads=[heads], features=target)


def test_alexnet_shapes_of_the_recording_are_ours():
    from metrics import lpips  # pylint: disable=import-outside-toplevel
    assert {key: tuple(value.shape) for key, value in recording.alexnet_state().items()} == lpips.ALEXNET_SHAPES
    assert {key: tuple(value.shape) for key, value in recording.lin_state().items()} == lpips.LINEAR_SHAPES


def test_ggdr_term_matches_naver_ggdr():
    term = GGDRLoss(resolution=recording.FEATURE_SHAPE[-1], weight=RECORDED['weights']['ggdr'])
    ours = [float(term(_ctx(pred, target)).mean()) for pred, target in recording.feature_pairs()]
    assert ours == pytest.approx(RECORDED['ggdr'], rel=1e-5, abs=1e-6)


def test_glead_feature_term_matches_glead():
    term = GLeaDLoss(branch='feature', feature_res=recording.FEATURE_SHAPE[-1],
                     weight=RECORDED['weights']['glead_fake_feature'])
    ours = [float(term(_ctx(pred, target)).mean()) for pred, target in recording.feature_pairs()]
    assert ours == pytest.approx(RECORDED['glead']['fake_feature'], rel=1e-5, abs=1e-6)


@pytest.mark.parametrize('branch, key, weight_key', [('real', 'real', 'glead_real'),
                                                      ('image', 'fake_image', 'glead_fake_image')])
def test_glead_lpips_terms_match_glead(seeded_lpips_dir, branch, key, weight_key):
    term = GLeaDLoss(branch=branch, feature_res=8, weight=RECORDED['weights'][weight_key], detector_dir=seeded_lpips_dir)
    with torch.no_grad():
        ours = [float(term.perceptual_distance(x, y).mean() * term.weight) for x, y in recording.image_pairs()]
    assert ours == pytest.approx(RECORDED['glead'][key], rel=1e-5, abs=1e-7)


def test_lpips_matches_the_lpips_package_per_pair(seeded_lpips_dir):
    from metrics import lpips  # pylint: disable=import-outside-toplevel
    model = lpips.load_lpips(device=torch.device('cpu'), detector_dir=seeded_lpips_dir)
    with torch.no_grad():
        ours = [[float(v) for v in model(x, y).flatten()] for x, y in recording.image_pairs()]
    for got, expected in zip(ours, RECORDED['lpips']):
        assert got == pytest.approx(expected, rel=1e-5, abs=1e-8)


@pytest.mark.parametrize('make_term', [
    lambda weight: GGDRLoss(resolution=8, weight=weight),
    lambda weight: GLeaDLoss(branch='feature', feature_res=8, weight=weight),
])
def test_each_feature_term_is_linear_in_its_weight(make_term):
    pred, target = recording.feature_pairs()[0]
    unit = make_term(1.0)(_ctx(pred, target))
    for weight in (0.5, 3.0, 10.0):
        assert torch.allclose(make_term(weight)(_ctx(pred, target)), unit * weight, rtol=1e-6, atol=0)


@pytest.mark.parametrize('branch', ['real', 'image'])
def test_each_lpips_term_is_linear_in_its_weight(seeded_lpips_dir, branch):
    x, y = recording.image_pairs()[0]

    def value(weight):
        term = GLeaDLoss(branch=branch, feature_res=8, weight=weight, detector_dir=seeded_lpips_dir)
        with torch.no_grad():
            return term.perceptual_distance(x, y) * term.weight
    assert torch.allclose(value(3.0), value(1.0) * 3, rtol=1e-6, atol=0)

#----------------------------------------------------------------------------
# Each flag changes exactly the setting it names.

@pytest.fixture(scope='module')
def data32(tmp_path_factory):
    path = tmp_path_factory.mktemp('data') / 'images32'
    write_image_folder(str(path), num_images=4, resolution=32)
    return str(path)


def _regularizer_settings(tmp_path, data, lpips_dir, **flags):
    options = tiny_options(tmp_path / 'runs', data, detector_dir=lpips_dir, **flags)
    config = run_config.resolve_config(options)
    return dict(decoder_res=config.D_kwargs.get('decoder_res'), glead_kwargs=config.D_kwargs.get('glead_kwargs'),
                terms=json.loads(json.dumps(config.loss_kwargs.get('extra_terms'))))


def _differences(before, after, prefix=''):
    if isinstance(before, dict) and isinstance(after, dict):
        return {path for key in set(before) | set(after)
                for path in _differences(before.get(key), after.get(key), f'{prefix}{key}.')}
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return {path for i, (b, a) in enumerate(zip(before, after)) for path in _differences(b, a, f'{prefix}{i}.')}
    return set() if before == after else {prefix.rstrip('.')}


def test_ggdr_resolves_to_the_public_defaults(tmp_path, data32):
    settings = _regularizer_settings(tmp_path, data32, None, reg_type='ggdr')
    assert settings['decoder_res'] == 8 and settings['glead_kwargs'] is None  # A quarter of 32, at least 8.
    assert settings['terms'] == [dict(class_name='training.regularizers.GGDRLoss', resolution=8, weight=10.0)]


def test_glead_resolves_to_the_papers_weights(tmp_path, data32, seeded_lpips_dir):
    settings = _regularizer_settings(tmp_path, data32, seeded_lpips_dir, reg_type='glead')
    common = dict(class_name='training.regularizers.GLeaDLoss', feature_res=8, detector_dir=seeded_lpips_dir)
    assert settings['decoder_res'] == 8
    assert settings['terms'] == [dict(common, branch='real', weight=10.0, in_r1_phase=True),
                                 dict(common, branch='image', weight=3.0)]


@pytest.mark.parametrize('reg_type, flag, value, changed', [
    ('ggdr', 'ggdr_weight', 2.5, {'terms.0.weight'}),
    ('ggdr', 'ggdr_res', 16, {'decoder_res', 'terms.0.resolution'}),
    ('glead', 'glead_fake', 'feature', {'terms.1.branch', 'terms.1.weight'}),
    ('glead', 'glead_real_in_r1', False, {'terms.0.in_r1_phase'}),
    ('glead', 'glead_res_d', 16, {'decoder_res'}),
    ('glead', 'glead_res_g', 16, {'terms.0.feature_res', 'terms.1.feature_res'}),  # 32 channels at 8 and 16 here.
])
def test_each_regulariser_flag_changes_exactly_its_setting(tmp_path, data32, seeded_lpips_dir, reg_type, flag, value,
                                                          changed):
    lpips_dir = seeded_lpips_dir if reg_type == 'glead' else None
    default = _regularizer_settings(tmp_path, data32, lpips_dir, reg_type=reg_type)
    flagged = _regularizer_settings(tmp_path, data32, lpips_dir, reg_type=reg_type, **{flag: value})
    assert _differences(default, flagged) == changed

#----------------------------------------------------------------------------
# GLeaD's training path: its networks and loss phases (recorded by tests/reference/record_glead_training.py).

@pytest.fixture(scope='module')
def glead_training(seeded_lpips_dir):
    """(recorded, ours): {case: {phase: terms and D gradient summary}} for GLeaD's training path."""
    with open(glead_path.OUT, encoding='utf-8') as f:
        recorded = json.load(f)
    assert recorded['weights'] == glead_path.WEIGHTS and recorded['r1_gamma'] == glead_path.R1_GAMMA
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # As the recording: with 2 threads, the image case's D gradients move by up to 7e-5.
    try:
        ours = {case: _our_glead_phases(seeded_lpips_dir, *spec) for case, spec in glead_path.CASES.items()}
    finally:
        torch.set_num_threads(threads)
    return recorded['results'], ours


def _our_glead_phases(lpips_dir, fake, res_d, res_g):
    """record_glead_training.run_phases with our Generator, Discriminator (decoder and GLeaD heads) and loss."""
    def build():
        G = networks.Generator(**glead_path.G_KWARGS)
        feature_channels = getattr(G.synthesis, f'b{res_g}').conv1.weight.shape[0]
        D = networks.Discriminator(**glead_path.D_KWARGS, decoder_res=res_d,
                                   glead_kwargs=dict(feature_channels=feature_channels, w_dim=G.w_dim))
        glead_path.fill(G)
        glead_path.fill(D)
        return G, D
    seen = {}

    def accumulate(G, D, phase, gain):
        terms = [GLeaDLoss(branch=branch, feature_res=res_g, weight=glead_path.WEIGHTS[branch], detector_dir=lpips_dir)
                 for branch in ('real', fake)]
        loss = StyleGAN2Loss('cpu', G, D, r1_gamma=glead_path.R1_GAMMA, style_mixing_prob=0, pl_weight=0,
                             extra_terms=terms)
        collect = loss._extra_terms  # pylint: disable=protected-access

        def capture(pass_name, step, ctx):  # Loss/D/glead_real, Loss/D/glead_fake -> 'real', 'fake'.
            losses = collect(pass_name, step, ctx)
            seen.update({stat.rsplit('_', 1)[1]: float(value.detach().mean()) for stat, value in losses.items()})
            return losses
        loss._extra_terms = capture  # pylint: disable=protected-access
        seen.clear()
        loss.accumulate_gradients(phase, *glead_path.phase_inputs(), gain=gain, cur_nimg=0)
    return glead_path.run_phases(build, accumulate, lambda: dict(seen))


@pytest.mark.parametrize('phase', ['Dmain', 'Dreg'])
@pytest.mark.parametrize('case', sorted(glead_path.CASES))
def test_glead_phases_through_its_networks_match_glead(glead_training, case, phase):
    """GLeaD's terms and every D gradient (D's blocks, the decoder, the three heads: the reconstruction runs through
    G's blocks above the feature resolution) as its own networks and loss compute them."""
    recorded, ours = (results[case][phase] for results in glead_training)
    assert ours['terms'] == pytest.approx(recorded['terms'], rel=1e-5)
    assert sorted(ours['grads']) == sorted(recorded['grads'])
    for name, (norm, projection) in recorded['grads'].items():
        assert ours['grads'][name][0] == pytest.approx(norm, rel=1e-5, abs=1e-12), name
        assert ours['grads'][name][1] == pytest.approx(projection, abs=1e-5 * norm + 1e-12), name
