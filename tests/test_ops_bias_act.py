"""CPU tests of the bias_act reference: every activation against torch.nn.functional, defaults, clamp, gradients to second order."""

import math

import pytest
import torch

from torch_utils.ops import bias_act
from tests.ops_helpers import randn

F = torch.nn.functional

# Each activation written out directly, with the default alpha and gain StyleGAN2 uses.
DIRECT = {
    'linear':   (lambda x: x,                      1),
    'relu':     (lambda x: F.relu(x),              math.sqrt(2)),
    'lrelu':    (lambda x: F.leaky_relu(x, 0.2),   math.sqrt(2)),
    'tanh':     (lambda x: torch.tanh(x),          1),
    'sigmoid':  (lambda x: torch.sigmoid(x),       1),
    'elu':      (lambda x: F.elu(x),               1),
    'selu':     (lambda x: F.selu(x),              1),
    'softplus': (lambda x: F.softplus(x),          1),
    'swish':    (lambda x: x * torch.sigmoid(x),   math.sqrt(2)),
}

#----------------------------------------------------------------------------

def test_activation_table_lists_every_activation_with_defaults():
    assert set(bias_act.activation_funcs) == set(DIRECT)
    for name, (_, gain) in DIRECT.items():
        assert math.isclose(bias_act.activation_funcs[name].def_gain, gain)
    assert math.isclose(bias_act.activation_funcs['lrelu'].def_alpha, 0.2)


@pytest.mark.parametrize('act', sorted(DIRECT))
def test_bias_act_matches_direct_composition_with_default_gain(act):
    x = randn(2, 5, 3, 4) * 3
    b = randn(5, seed=1)
    func, gain = DIRECT[act]
    y = bias_act.bias_act(x, b, act=act)
    torch.testing.assert_close(y, func(x + b.reshape(1, -1, 1, 1)) * gain)


def test_bias_goes_along_the_chosen_dim():
    x = randn(3, 4, 6)
    b = randn(6, seed=2)
    torch.testing.assert_close(bias_act.bias_act(x, b, dim=2), x + b)
    torch.testing.assert_close(bias_act.bias_act(x, None, act='relu', gain=1), F.relu(x))


def test_alpha_gain_and_clamp_override_defaults():
    x = randn(4, 3) * 4
    b = randn(3, seed=3)
    y = bias_act.bias_act(x, b, act='lrelu', alpha=0.1, gain=0.5, clamp=0.8)
    torch.testing.assert_close(y, (F.leaky_relu(x + b, 0.1) * 0.5).clamp(-0.8, 0.8))
    assert y.abs().max() <= 0.8 and (y.abs() == 0.8).any()


def test_unknown_activation_is_rejected_with_the_accepted_names():
    with pytest.raises(ValueError, match='unknown activation "gelu".*lrelu'):
        bias_act.bias_act(randn(2, 2), act='gelu')


def test_cuda_impl_on_cpu_tensor_uses_reference_silently(recwarn):
    x, b = randn(2, 3, 4, 4), randn(3, seed=1)
    torch.testing.assert_close(bias_act.bias_act(x, b, act='lrelu', impl='cuda'), bias_act.bias_act(x, b, act='lrelu', impl='ref'))
    assert len(recwarn) == 0


def test_half_precision_input_keeps_its_dtype():
    x = randn(2, 3, 4, 4, dtype=torch.float16)
    b = randn(3, seed=1, dtype=torch.float16)
    y = bias_act.bias_act(x, b, act='lrelu', clamp=256)
    assert y.dtype == torch.float16
    torch.testing.assert_close(y.float(), bias_act.bias_act(x.float(), b.float(), act='lrelu', clamp=256), atol=1e-2, rtol=1e-2)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('act', sorted(DIRECT))
def test_bias_act_gradients_first_and_second_order(act):
    # Odd sizes; values kept away from relu/lrelu kinks, where finite differences are not meaningful.
    x = randn(2, 3, 1, 3) * 2
    x = (x + 0.1 * x.sign()).requires_grad_(True)
    b = (randn(3, seed=4) * 0.01).requires_grad_(True)
    func = lambda x, b: bias_act.bias_act(x, b, act=act, clamp=(1.5 if act in ('relu', 'lrelu', 'swish') else None))
    assert torch.autograd.gradcheck(func, [x, b])
    assert torch.autograd.gradgradcheck(func, [x, b])
