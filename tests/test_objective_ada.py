"""AdaController: p follows sign(r_t - target) every interval, clamped to [0, 1]; modes; exact resume."""

import pytest
import torch

from torch_utils import training_stats
from training.augment.ada import AdaController
from training.augment import AugmentPipe

STEP = 64 * 4 / (100 * 1000)  # batch_size * interval / (ada_kimg * 1000) for the controllers below.


def _controller(p=0.5, **kwargs):
    pipe = AugmentPipe(xflip=1)
    kwargs = dict(dict(mode='ada', p=p, target=0.6, interval=4, ada_kimg=100, batch_size=64), **kwargs)
    return AdaController(pipe, **kwargs), pipe


def _train_steps(controller, signs, steps):
    """Report sign(D(real)) values, as the loss would, and count `steps` training steps."""
    for _ in range(steps):
        training_stats.report('Loss/signs/real', torch.tensor(signs, dtype=torch.float32))
        controller.step()

#----------------------------------------------------------------------------

def test_p_moves_up_when_rt_is_above_target():
    ada, pipe = _controller()
    _train_steps(ada, [1.0, 1.0, 1.0, -1.0], 4)  # r_t = mean of the signs = 0.5.
    assert ada.last_rt == pytest.approx(0.5)
    assert ada.p == pytest.approx(0.5 - STEP)    # 0.5 < 0.6: down.
    _train_steps(ada, [1.0, 1.0, 1.0, 1.0], 4)
    assert ada.last_rt == pytest.approx(1.0)
    assert ada.p == pytest.approx(0.5)            # 1.0 > 0.6: up again.
    assert float(pipe.p) == pytest.approx(ada.p)


def test_p_moves_down_when_rt_is_below_target():
    ada, pipe = _controller()
    _train_steps(ada, [-1.0, 1.0], 4)
    assert ada.p == pytest.approx(0.5 - STEP) and float(pipe.p) == pytest.approx(0.5 - STEP)


def test_p_changes_only_at_the_end_of_each_interval():
    ada, _ = _controller()
    _train_steps(ada, [1.0], 3)
    assert ada.p == 0.5
    _train_steps(ada, [1.0], 1)
    assert ada.p == pytest.approx(0.5 + STEP)


def test_p_is_clamped_to_zero_and_one():
    ada, pipe = _controller(p=STEP / 2)
    _train_steps(ada, [-1.0], 4)
    assert ada.p == 0 and float(pipe.p) == 0
    ada, pipe = _controller(p=1 - STEP / 2)
    _train_steps(ada, [1.0], 4)
    assert ada.p == 1 and float(pipe.p) == 1


def test_interval_without_statistics_leaves_p_unchanged():
    ada, _ = _controller()
    for _ in range(8):
        ada.step()
    assert ada.p == 0.5


def test_fixed_mode_keeps_p():
    ada, pipe = _controller(mode='fixed', p=0.3)
    _train_steps(ada, [1.0], 8)
    assert ada.p == 0.3 and float(pipe.p) == pytest.approx(0.3)


def test_noaug_mode_sets_p_to_zero_and_needs_no_pipe():
    ada, pipe = _controller(mode='noaug', p=0.3)
    assert ada.p == 0 and float(pipe.p) == 0
    assert AdaController(None, mode='noaug').p == 0


def test_resume_mid_interval_continues_exactly():
    signs = [[1.0, -1.0, 1.0], [1.0, 1.0], [-1.0], [-1.0, -1.0], [1.0], [-1.0, 1.0]]
    uninterrupted, _ = _controller(target=0.3)
    for s in signs:
        _train_steps(uninterrupted, s, 1)
    expected = uninterrupted.state_dict()

    first, _ = _controller(target=0.3)
    for s in signs[:5]:
        _train_steps(first, s, 1)
    state = first.state_dict()
    resumed, pipe = _controller(p=0.0, target=0.3)
    training_stats.report('Loss/signs/real', torch.ones([100]))  # Stale reports from before the restore.
    resumed.load_state_dict(state)
    _train_steps(resumed, signs[5], 1)
    assert resumed.state_dict() == expected
    assert expected['steps'] == 2 and float(pipe.p) == pytest.approx(expected['p'])


@pytest.mark.parametrize('kwargs, match', [
    (dict(mode='adaptive'), 'ada, fixed, noaug'),
    (dict(p=1.5), r'\[0, 1\]'),
    (dict(target=2), 'target'),
    (dict(interval=0), 'interval'),
])
def test_invalid_settings_are_rejected_with_accepted_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _controller(**kwargs)


def test_ada_mode_needs_an_augment_pipe():
    with pytest.raises(ValueError, match='augment pipe'):
        AdaController(None, mode='ada')

#----------------------------------------------------------------------------
