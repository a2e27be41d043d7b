"""StyleGAN2Loss on tiny stand-in networks: phases, R1, path length, style mixing, lazy reg, stats, non-finite losses."""

import numpy as np
import pytest
import torch

from training import loss as loss_module
from training.loss import LossTerm, NonFiniteLossError, StyleGAN2Loss
from tests import objective_helpers as helpers

#----------------------------------------------------------------------------

def _grads(module):
    return [p.grad for p in module.parameters()]


def _zero_grads(*modules):
    for module in modules:
        for p in module.parameters():
            p.grad = None


def _make(D=None, **kwargs):
    torch.manual_seed(0)
    G = helpers.TinyG()
    D = D if D is not None else helpers.TinyD()
    return G, D, StyleGAN2Loss('cpu', G, D, **kwargs)

#----------------------------------------------------------------------------

def test_generator_phases_give_finite_gradients_to_generator():
    G, D, loss = _make()
    loss.accumulate_gradients('Gboth', *helpers.batch(G), gain=1, cur_nimg=0)
    grads = _grads(G.synthesis)
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_discriminator_phases_give_finite_gradients_to_discriminator():
    G, D, loss = _make()
    loss.accumulate_gradients('Dboth', *helpers.batch(G), gain=1, cur_nimg=0)
    grads = _grads(D)
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_discriminator_phase_leaves_generator_without_gradients():
    G, D, loss = _make()
    loss.accumulate_gradients('Dmain', *helpers.batch(G), gain=1, cur_nimg=0)
    assert all(g is None for g in _grads(G))


def test_unknown_phase_is_rejected_with_accepted_names():
    G, D, loss = _make()
    with pytest.raises(ValueError, match='Gboth'):
        loss.accumulate_gradients('Gall', *helpers.batch(G), gain=1, cur_nimg=0)


def test_every_term_is_reported_by_name():
    G, D, loss = _make()
    def run():
        loss.accumulate_gradients('Gboth', *helpers.batch(G), gain=1, cur_nimg=0)
        loss.accumulate_gradients('Dboth', *helpers.batch(G), gain=1, cur_nimg=0)
    stats = helpers.collect(run)
    for name in ['Loss/G/loss', 'Loss/D/loss', 'Loss/r1_penalty', 'Loss/pl_penalty', 'Loss/scores/real',
                 'Loss/scores/fake', 'Loss/signs/real']:
        assert stats.num(name) > 0, name
        assert np.isfinite(stats.mean(name)), name


def test_generator_loss_is_non_saturating_logistic():
    G, D, loss = _make(style_mixing_prob=0)
    real_img, real_c, gen_z, gen_c = helpers.batch(G)
    stats = helpers.collect(lambda: loss.accumulate_gradients('Gmain', real_img, real_c, gen_z, gen_c, gain=1, cur_nimg=0))
    with torch.no_grad():
        expected = torch.nn.functional.softplus(-D(G(gen_z, gen_c), gen_c)).mean()
    assert stats.mean('Loss/G/loss') == pytest.approx(float(expected), rel=1e-5)

#----------------------------------------------------------------------------
# R1.

def test_r1_penalty_matches_hand_computed_gradient_penalty():
    D = helpers.QuadraticD().double()
    G, D, loss = _make(D=D, r1_gamma=3.0)
    real_img = helpers.batch(G)[0].double()
    c = torch.zeros([4, 0])
    stats = helpers.collect(lambda: loss.accumulate_gradients('Dreg', real_img, c, None, c, gain=2, cur_nimg=0))

    # d logit / d img = y * w with y = sum_c w_c img_c, so |grad|^2 = sum_hw y^2 * sum_c w_c^2.
    w = D.weight.detach().flatten()
    y = torch.einsum('c,nchw->nhw', w, real_img)
    penalty = y.square().sum(dim=[1, 2]) * w.square().sum()
    assert stats.mean('Loss/r1_penalty') == pytest.approx(float(penalty.mean()), rel=1e-10)

    # The weight gradient equals that of gain * gamma/2 * mean(penalty) taken by plain autograd.
    w_ref = D.weight.detach().clone().requires_grad_(True)
    y_ref = torch.nn.functional.conv2d(real_img, w_ref)
    reference = y_ref.square().sum(dim=[1, 2, 3]) * w_ref.square().sum()
    grad_ref, = torch.autograd.grad(2 * 1.5 * reference.mean(), [w_ref])
    assert torch.allclose(D.weight.grad, grad_ref, rtol=1e-10)


def test_r1_penalty_is_zero_for_constant_discriminator():
    G, D, loss = _make(D=helpers.ConstantD())
    stats = helpers.collect(lambda: loss.accumulate_gradients('Dreg', *helpers.batch(G), gain=1, cur_nimg=0))
    assert stats.num('Loss/r1_penalty') == 4
    assert stats.mean('Loss/r1_penalty') == 0


def test_reg_phase_gain_scales_gradient_linearly():
    G, D, loss = _make(D=helpers.QuadraticD())
    data = helpers.batch(G)
    loss.accumulate_gradients('Dreg', *data, gain=1, cur_nimg=0)
    once = D.weight.grad.clone()
    _zero_grads(D)
    loss.accumulate_gradients('Dreg', *data, gain=16, cur_nimg=0)
    assert torch.allclose(D.weight.grad, once * 16, rtol=1e-5)


def test_r1_is_skipped_when_gamma_is_zero():
    G, D, loss = _make(r1_gamma=0)
    stats = helpers.collect(lambda: loss.accumulate_gradients('Dboth', *helpers.batch(G), gain=1, cur_nimg=0))
    assert stats.num('Loss/r1_penalty') == 0
    assert stats.num('Loss/D/loss') == 4

#----------------------------------------------------------------------------
# Path length.

def _expected_pl_lengths(G, noise):
    # img is linear in ws: d<img, noise>/d ws[:, l] = A_l @ noise, identical for every sample's ws.
    grads = torch.einsum('lwp,np->nlw', G.synthesis.A.detach(), noise.flatten(1))
    return grads.square().sum(dim=2).mean(dim=1).sqrt()


def test_path_length_mean_follows_running_average_of_lengths():
    G, D, loss = _make(style_mixing_prob=0, pl_decay=0.25, pl_batch_shrink=2)
    data = helpers.batch(G, batch_size=4)
    res = G.img_resolution
    expected_mean = 0.0
    for seed in (1, 2):
        torch.manual_seed(seed)
        loss.accumulate_gradients('Greg', *data, gain=1, cur_nimg=0)
        torch.manual_seed(seed)
        noise = torch.randn([2, G.img_channels, res, res]) / res  # pl_batch_shrink=2 halves the batch of 4.
        lengths = _expected_pl_lengths(G, noise)
        expected_mean = expected_mean + 0.25 * (float(lengths.mean()) - expected_mean)
        assert float(loss.pl_mean) == pytest.approx(expected_mean, rel=1e-5)
    assert expected_mean > 0


def test_path_length_mean_round_trips_through_state_dict():
    G, D, loss = _make()
    loss.accumulate_gradients('Greg', *helpers.batch(G), gain=1, cur_nimg=0)
    state = loss.state_dict()
    assert float(state['pl_mean']) > 0
    _, _, restored = _make()
    restored.load_state_dict(state)
    assert float(restored.pl_mean) == float(loss.pl_mean)


def test_path_length_is_skipped_when_weight_is_zero():
    G, D, loss = _make(pl_weight=0)
    stats = helpers.collect(lambda: loss.accumulate_gradients('Greg', *helpers.batch(G), gain=1, cur_nimg=0))
    assert stats.num('Loss/pl_penalty') == 0
    assert float(loss.pl_mean) == 0

#----------------------------------------------------------------------------
# Style mixing, w average, augmentation.

def test_style_mixing_prob_one_mixes_two_latents_from_a_layer_on():
    G, D, loss = _make(style_mixing_prob=1)
    for seed in range(5):
        torch.manual_seed(seed)
        _, ws = loss.run_G(torch.randn([2, G.z_dim]), torch.zeros([2, 0]))
        same_as_first = [bool(torch.equal(ws[:, i], ws[:, 0])) for i in range(G.num_ws)]
        cutoff = same_as_first.index(False)
        assert cutoff >= 1 and not any(same_as_first[cutoff:])


def test_style_mixing_prob_zero_uses_one_latent_for_all_layers():
    G, D, loss = _make(style_mixing_prob=0)
    _, ws = loss.run_G(torch.randn([2, G.z_dim]), torch.zeros([2, 0]))
    assert all(torch.equal(ws[:, i], ws[:, 0]) for i in range(G.num_ws))


def test_only_discriminator_pass_on_fakes_updates_w_average():
    G, D, loss = _make()
    loss.accumulate_gradients('Gboth', *helpers.batch(G), gain=1, cur_nimg=0)
    assert G.mapping.ema_updates == 0
    loss.accumulate_gradients('Dmain', *helpers.batch(G), gain=1, cur_nimg=0)
    assert G.mapping.ema_updates == 1


def test_augment_pipe_sees_every_image_shown_to_discriminator():
    seen = []
    def pipe(img):
        seen.append(img.shape[0])
        return img.flip(3)
    G, D, loss = _make(augment_pipe=pipe)
    loss.accumulate_gradients('Dboth', *helpers.batch(G), gain=1, cur_nimg=0)
    loss.accumulate_gradients('Gmain', *helpers.batch(G), gain=1, cur_nimg=0)
    assert seen == [4, 4, 4]

#----------------------------------------------------------------------------
# Non-finite losses.

def test_non_finite_loss_is_raised_at_the_check_naming_the_first_phase_and_step():
    G, D, loss = _make()
    loss.accumulate_gradients('Dmain', *helpers.batch(G), gain=1, cur_nimg=100)
    loss.raise_if_nonfinite()  # All finite so far.
    loss.D = helpers.NaND()
    loss.accumulate_gradients('Dmain', *helpers.batch(G), gain=1, cur_nimg=12345)  # Noted on the device, not raised.
    loss.accumulate_gradients('Gmain', *helpers.batch(G), gain=1, cur_nimg=12349)
    with pytest.raises(NonFiniteLossError, match=r'^Loss/D/loss \(fake\) is NaN in phase Dmain \(Dgen pass\) at image 12345 '
                                                 r'\(kimg 12\.3\); lower the learning rate'):
        loss.raise_if_nonfinite()
    loss.raise_if_nonfinite()  # Each check covers the steps since the last one.


def test_infinite_loss_is_named_as_infinite():
    G, D, loss = _make()
    loss.D = helpers.MinusInfD()
    loss.accumulate_gradients('Gmain', *helpers.batch(G), gain=1, cur_nimg=8)
    with pytest.raises(NonFiniteLossError, match=r'^Loss/G/loss is infinite in phase Gmain \(Gmain pass\) at image 8 '):
        loss.raise_if_nonfinite()


def test_non_finite_check_can_be_turned_off():
    G, D, loss = _make(D=helpers.NaND(), check_finite=False)
    loss.accumulate_gradients('Gmain', *helpers.batch(G), gain=1, cur_nimg=0)
    assert torch.isnan(G.synthesis.bias.grad).all()

#----------------------------------------------------------------------------
# Extra terms and heads.

class _FeatureNorm(LossTerm):
    name = 'features'
    passes = ('Dreal',)

    def __init__(self):
        self.calls = []

    def __call__(self, ctx):
        self.calls.append(ctx.phase)
        features, = ctx.heads
        return features.square().mean(dim=[1, 2, 3]) * 0.5


def test_extra_term_joins_its_pass_and_sees_discriminator_heads():
    term = _FeatureNorm()
    G, D, loss = _make(D=helpers.TwoHeadD(), extra_terms=[term])
    stats = helpers.collect(lambda: loss.accumulate_gradients('Dmain', *helpers.batch(G), gain=1, cur_nimg=0))
    loss.accumulate_gradients('Gmain', *helpers.batch(G), gain=1, cur_nimg=0)
    assert term.calls == ['Dmain']
    assert stats.num('Loss/features') == 4 and stats.mean('Loss/features') > 0


def test_extra_term_with_unknown_pass_is_rejected():
    class Bad(LossTerm):
        passes = ('Dfake',)
    with pytest.raises(ValueError, match='Dreal'):
        _make(extra_terms=[Bad()])

#----------------------------------------------------------------------------
# Lazy regularisation.

def test_lazy_regularization_scales_lr_and_betas_by_minibatch_ratio():
    adjusted = loss_module.lazy_regularization_opt_kwargs(dict(lr=0.002, betas=[0, 0.99], eps=1e-8), 16)
    ratio = 16 / 17
    assert adjusted.lr == pytest.approx(0.002 * ratio)
    assert adjusted.betas == pytest.approx([0, 0.99 ** ratio])
    assert adjusted.eps == 1e-8


def test_without_lazy_regularization_opt_kwargs_are_unchanged():
    assert loss_module.lazy_regularization_opt_kwargs(dict(lr=0.002, betas=[0, 0.99]), None) == dict(lr=0.002, betas=[0, 0.99])


def test_training_phases_run_reg_every_interval_with_that_gain():
    assert loss_module.training_phases('G', 4) == [('Gmain', 1), ('Greg', 4)]
    assert loss_module.training_phases('D', None) == [('Dboth', 1)]

#----------------------------------------------------------------------------
