"""GLeaD: D's heads, the reconstruction through the live G, LPIPS terms (stand-in weights) and the R1-phase switch."""

import pytest
import torch

from tests import regularizer_helpers as helpers
from tests.metrics_helpers import write_lpips_weight_dir
from training.loss import StyleGAN2Loss
from training.regularizers import GLeaDLoss, reconstruct


@pytest.fixture(scope='module')
def lpips_dir(tmp_path_factory):
    return write_lpips_weight_dir(tmp_path_factory.mktemp('lpips'))[0]


def _glead(lpips_dir, fake='image', in_r1_phase=True, architecture='squeeze'):
    G = helpers.tiny_G(architecture)
    D = helpers.tiny_D(decoder_res=8, glead_kwargs=dict(feature_channels=32, w_dim=8))
    common = dict(class_name='training.regularizers.GLeaDLoss', feature_res=8, detector_dir=str(lpips_dir))
    terms = [dict(common, branch='real', weight=10, in_r1_phase=in_r1_phase),
             dict(common, branch=fake, weight=3 if fake == 'image' else 10)]
    return G, D, StyleGAN2Loss('cpu', G, D, pl_weight=0, extra_terms=terms)


def _reported(monkeypatch):
    from torch_utils import training_stats
    seen = {}

    def report(name, value):
        seen.setdefault(name, []).append(value)
        return value
    monkeypatch.setattr(training_stats, 'report', report)
    return seen


@pytest.mark.parametrize('architecture', ['skip', 'squeeze', 'resnet'])
def test_reconstruction_runs_the_blocks_above_the_feature_resolution(architecture):
    G = helpers.tiny_G(architecture)
    D = helpers.tiny_D(decoder_res=8, glead_kwargs=dict(feature_channels=32, w_dim=8))
    _logits, heads = D(torch.zeros([2, 3, 16, 16]), None)
    assert heads['img'].shape == (2, 3, 8, 8) and heads['feature'].shape == (2, 32, 8, 8) and heads['w'].shape == (2, 8)
    assert reconstruct(G, heads, 8).shape == (2, 3, 16, 16)


def test_real_and_fake_terms_train_d_through_g_and_leave_g_alone(lpips_dir, monkeypatch):
    seen = _reported(monkeypatch)
    G, D, loss = _glead(lpips_dir)
    G.requires_grad_(False)  # As in the training loop's D phases.
    D.requires_grad_(True)
    loss.accumulate_gradients('Dmain', *helpers.batch(G), gain=1, cur_nimg=0)
    assert {'Loss/D/glead_real', 'Loss/D/glead_fake'} <= set(seen)
    assert all(bool((value >= 0).all()) for value in seen['Loss/D/glead_real'] + seen['Loss/D/glead_fake'])
    for head in (D.glead.to_img, D.glead.to_feature, D.glead.to_w):
        assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0  # w reaches D only through G.
    assert all(p.grad is None for p in G.parameters())


@pytest.mark.parametrize('in_r1_phase', [True, False])
def test_real_term_joins_the_lazy_r1_phase_only_when_asked(lpips_dir, monkeypatch, in_r1_phase):
    seen = _reported(monkeypatch)
    G, D, loss = _glead(lpips_dir, in_r1_phase=in_r1_phase)
    D.requires_grad_(True)
    loss.accumulate_gradients('Dreg', *helpers.batch(G), gain=16, cur_nimg=0)
    assert ('Loss/D/glead_real' in seen) == in_r1_phase
    assert 'Loss/D/glead_fake' not in seen and 'Loss/D/reg' in seen


def test_feature_variant_compares_the_predicted_feature_with_gs(lpips_dir, monkeypatch):
    seen = _reported(monkeypatch)
    G, D, loss = _glead(lpips_dir, fake='feature')
    assert loss.feature_res == 8
    loss.accumulate_gradients('Dmain', *helpers.batch(G), gain=1, cur_nimg=0)
    fake = seen['Loss/D/glead_fake'][0]
    assert fake.shape == (4,) and bool(((fake >= 0) & (fake <= 20)).all())


def test_unknown_branch_is_refused():
    with pytest.raises(ValueError, match='branch must be "real", "image" or "feature"'):
        GLeaDLoss(branch='both', feature_res=8, weight=1)
