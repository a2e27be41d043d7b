"""--loss=rpgan: RpGAN + R1 + R2 held to R3GAN's Trainer.py (numbers recorded by tests/reference/record_rpgan.py),
its lazy form, what ADA reads from it, and the checks around it."""

import json

import pytest
import torch

from tests.reference import record_rpgan as recording
from torch_utils import training_stats
from training.rpgan import RpGANLoss

with open(recording.OUT, encoding='utf-8') as _f:
    RECORDED = json.load(_f)


def _loss(G, D, stand_in=None, gamma=recording.GAMMA):
    return RpGANLoss(torch.device('cpu'), G, D, augment_pipe=stand_in, r1_gamma=gamma, style_mixing_prob=0,
                     pl_weight=0)


def _our_step(phase):
    def run_step(G, D, stand_in, real, c, z):
        collector = training_stats.Collector(regex='Loss/.*')
        collector.update()  # Drop what earlier tests reported.
        _loss(G, D, stand_in).accumulate_gradients(phase, real, c, z, c, gain=1, cur_nimg=0)
        collector.update()
        names = ['Loss/G/loss'] if phase == 'Gmain' else ['Loss/D/loss', 'Loss/r1_penalty', 'Loss/r2_penalty']
        return {name: torch.tensor(collector.mean(name)) for name in names}
    return run_step


@pytest.mark.parametrize('network, phase', [('G', 'Gmain'), ('D', 'Dboth')])
@pytest.mark.parametrize('case', sorted(recording.CASES))
def test_terms_and_gradients_match_r3gan(network, phase, case):
    ours = recording.step_results(_our_step(phase), network)[case]
    expected = RECORDED[network][case]
    assert RECORDED['gamma'] == recording.GAMMA
    for name, value in expected['terms'].items():
        assert ours['terms'][name] == pytest.approx(value, rel=1e-5, abs=1e-12), name
    assert sorted(ours['gradients']) == sorted(expected['gradients'])
    for name, (norm, projection) in expected['gradients'].items():
        assert ours['gradients'][name][0] == pytest.approx(norm, rel=1e-5, abs=1e-12), name
        assert ours['gradients'][name][1] == pytest.approx(projection, abs=1e-5 * norm + 1e-12), name


def _d_gradients(phase, gain=1, gamma=recording.GAMMA, shift=0.0):
    G, D = recording.networks()
    D.requires_grad_(True)
    real, c, z, _ = recording.sg2.phase_inputs()
    if shift:
        head = D.b4.out  # The last layer: its bias moves every logit.
        with torch.no_grad():
            head.bias.add_(shift)
    torch.manual_seed(5)
    _loss(G, D, gamma=gamma).accumulate_gradients(phase, real, c, z, c, gain=gain, cur_nimg=0)
    return {name: p.grad.clone() for name, p in D.named_parameters() if p.grad is not None}


def test_lazy_phases_add_up_to_the_every_step_phase():
    """Dmain + Dreg / N = Dboth: the lazy penalty phase with gain N is the same penalty, N times."""
    both, main, reg = _d_gradients('Dboth'), _d_gradients('Dmain'), _d_gradients('Dreg', gain=4)
    scale = max(float(grad.abs().max()) for grad in both.values())  # Some tensors' gradients are float noise (~1e-9).
    for name, grad in both.items():
        assert torch.allclose(main.get(name, 0) + reg[name] / 4, grad, rtol=0, atol=1e-5 * scale), name


def test_the_penalties_weigh_gamma_over_two():
    """Gradients of the penalty phase scale with gamma (and vanish without it)."""
    one, two = _d_gradients('Dreg', gamma=1e5), _d_gradients('Dreg', gamma=2e5)
    assert any(grad.abs().max() > 0 for grad in one.values())
    for name, grad in one.items():
        assert torch.allclose(2 * grad, two[name], rtol=1e-5, atol=1e-12), name


def test_ada_reads_the_relativistic_sign_which_a_shift_of_d_leaves_alone():
    """Adding a constant to every logit changes sign(D(x)) but not the loss, its gradients, or what ADA reads."""
    def signs_and_grads(shift):
        collector = training_stats.Collector(regex='Loss/signs/real')
        collector.update()
        grads = _d_gradients('Dboth', shift=shift)
        collector.update()
        return collector.mean('Loss/signs/real'), grads
    signs, grads = signs_and_grads(0.0)
    shifted_signs, shifted_grads = signs_and_grads(50.0)
    assert shifted_signs == signs
    scale = max(float(grad.abs().max()) for grad in grads.values())  # Some tensors' gradients are float noise (~1e-9).
    for name, grad in grads.items():
        if name != 'b4.out.bias':
            assert torch.allclose(shifted_grads[name], grad, rtol=0, atol=1e-5 * scale), name


def test_extra_terms_are_refused_with_the_flag_to_use():
    G, D = recording.networks()
    with pytest.raises(ValueError, match='use --loss=ns'):
        RpGANLoss(torch.device('cpu'), G, D, extra_terms=[object()])
