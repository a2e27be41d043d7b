"""--loss=rpgan, --reg-every and cosine schedules through train.py's configuration and the training loop: the
presets, the checks, the values each step sees, the statistics and exact resume."""

import json
import math
import os

import pytest
import torch

from tests.train_helpers import final_snapshot_tensors, tiny_config, tiny_options, write_image_folder
from training.cli import launch as train_launch
from training.cli.config import ConfigError, load_preset, resolve_config
from training.run import schedules

KIMG = 0.016  # Every schedule of SCHEDULES ends here: four steps of 4 images.
SCHEDULES = {'lr': {'start': 0.002, 'end': 0.0005, 'kimg': KIMG}, 'gamma': {'start': 2, 'end': 0.2, 'kimg': KIMG},
             'beta2': {'start': 0.9, 'end': 0.99, 'kimg': KIMG}, 'ema_kimg': {'start': 0, 'end': 1, 'kimg': KIMG},
             'aug_p': {'start': 0, 'end': 0.6, 'kimg': KIMG}}


@pytest.fixture(scope='module')
def data16(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp('data') / 'tiny16', num_images=8, resolution=16)


def preset_file(folder, **changes):
    """configs/auto.json with `changes`, as a --cfg=FILE."""
    _name, values = load_preset('auto')
    path = os.path.join(folder, 'custom.json')
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(dict(values, **changes), f)
    return path


def test_the_default_objective_stays_the_non_saturating_loss(tmp_path, data16):
    config = resolve_config(tiny_options(tmp_path, data16))
    assert config.loss_kwargs.class_name == 'training.loss.StyleGAN2Loss' and config.schedules is None
    rpgan = resolve_config(tiny_options(tmp_path, data16, loss='rpgan'))
    assert rpgan.loss_kwargs.class_name == 'training.rpgan.RpGANLoss' and 'rpgan' in rpgan.run_desc.split('-')


@pytest.mark.parametrize('reg_every, interval', [(None, 16), (1, None), (4, 4)])
def test_reg_every_sets_the_lazy_interval_of_d(tmp_path, data16, reg_every, interval):
    config = resolve_config(tiny_options(tmp_path, data16, loss='rpgan', reg_every=reg_every))
    assert config.D_reg_interval == interval  # 16: --cfg=auto's d_reg_interval.


@pytest.mark.parametrize('name, gamma, ema, p, batch', [('rpgan-cifar', (0.05, 0.005), 5000, 0.55, 512),
                                                         ('rpgan-paper256', (150, 15), 500, 0.3, 256)])
def test_rpgan_presets_hold_r3gans_values(name, gamma, ema, p, batch):
    """R3GAN's train.py (19a7ddf), presets CIFAR10 and FFHQ-256: every schedule over 2e7 images."""
    _name, spec = load_preset(name)
    assert spec.loss == 'rpgan' and spec.batch == batch and spec.betas == [0, 0.9]
    assert spec.d_reg_interval is None and spec.pl_weight == 0 and spec.style_mixing_prob == 0
    expected = {'lr': (2e-4, 5e-5), 'beta2': (0.9, 0.99), 'gamma': gamma, 'ema_kimg': (0, ema), 'aug_p': (0, p)}
    assert {key: (s['start'], s['end']) for key, s in spec.schedules.items()} == expected
    assert {s['kimg'] for s in spec.schedules.values()} == {20000}
    assert (spec.lrate, spec.gamma) == (2e-4, gamma[0])


@pytest.mark.parametrize('changes, options, message', [
    (dict(loss='rpgan'), dict(reg_type='ggdr'), '--reg-type=ggdr is defined for the non-saturating loss'),
    (dict(schedules={'gamma': SCHEDULES['gamma']}), dict(gamma=3), '--gamma=3: --cfg=.* schedules gamma'),
    (dict(schedules={'aug_p': SCHEDULES['aug_p']}), dict(aug='ada'), '--aug=ada: .* schedules the augmentation p'),
    (dict(schedules={'aug_p': SCHEDULES['aug_p']}), dict(aug='fixed', p=0.2), '--aug=fixed: .* schedules'),
    (dict(schedules={'lr': {'start': 1, 'end': 0, 'kimg': 5}}), {}, 'schedules=.*lr: start and end must each be a positive'),
    (dict(schedules={'momentum': SCHEDULES['lr']}), {}, 'momentum: not a setting a schedule drives; accepted: lr, '),
    (dict(schedules={'lr': {'start': 1, 'end': 0.5}}), {}, r'lr: must be \{"start": number'),
    (dict(loss='hinge'), {}, 'loss="hinge": must be one of ns, rpgan'),
])
def test_bad_combinations_and_schedules_are_one_line(tmp_path, data16, changes, options, message):
    with pytest.raises(ConfigError, match=message) as error:
        resolve_config(tiny_options(tmp_path, data16, cfg=preset_file(tmp_path, **changes), **options))
    assert '\n' not in str(error.value)


def test_a_p_schedule_makes_a_fixed_pipe_that_noaug_turns_off(tmp_path, data16):
    cfg = preset_file(tmp_path, schedules={'aug_p': SCHEDULES['aug_p'], 'lr': SCHEDULES['lr']})
    config = resolve_config(tiny_options(tmp_path, data16, cfg=cfg, aug=None))
    assert config.augment_kwargs is not None and config.augment_p == 0 and config.ada_target is None
    assert 'pschedule' in config.run_desc.split('-')
    off = resolve_config(tiny_options(tmp_path, data16, cfg=cfg, aug='noaug'))
    assert off.augment_kwargs is None and list(off.schedules) == ['lr']


def test_cosine_runs_from_start_to_end_and_stays():
    spec = dict(start=2.0, end=0.5, kimg=10)
    values = [schedules.cosine(cur_nimg=n, **spec) for n in (0, 2500, 5000, 10000, 50000)]
    assert values == pytest.approx([2.0, 2.0 - 1.5 * (1 - math.cos(math.pi / 4)) / 2, 1.25, 0.5, 0.5])


def test_optimizer_values_are_rescaled_for_lazy_regularisation_as_the_configured_ones():
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1, betas=(0.0, 0.5))
    schedules.apply_to_optimizer(opt, {'lr': 0.01, 'beta2': 0.9}, reg_interval=4, beta1=0.0)
    assert opt.param_groups[0]['lr'] == pytest.approx(0.01 * 4 / 5)
    assert opt.param_groups[0]['betas'] == pytest.approx((0.0, 0.9 ** (4 / 5)))


def _scheduled_config(outdir, data, **overrides):
    cfg = preset_file(os.path.dirname(outdir), loss='rpgan', d_reg_interval=None, schedules=SCHEDULES)
    return tiny_config(outdir, data, cfg=cfg, aug=None, augpipe='bgc', tick=0.004, **overrides)


def test_each_step_sees_its_scheduled_values_and_reports_them(tmp_path, data16):
    os.makedirs(tmp_path / 'a')
    run_dir = train_launch.start(_scheduled_config(tmp_path / 'a' / 'runs', data16, kimg=KIMG), env={})
    ticks = [json.loads(line) for line in open(os.path.join(run_dir, 'stats.jsonl'))]
    assert len(ticks) == 4  # One step per tick: each tick's mean is that step's value, at 0, 4, 8 and 12 images.
    for tick, nimg in zip(ticks, (0, 4, 8, 12)):
        for name, spec in SCHEDULES.items():
            assert tick[f'Schedule/{name}']['mean'] == pytest.approx(schedules.cosine(cur_nimg=nimg, **spec)), name
        assert tick['Loss/r1_penalty']['num'] == tick['Loss/r2_penalty']['num'] == 4
    assert final_snapshot_tensors(run_dir)['augment_p'] == pytest.approx(schedules.cosine(cur_nimg=12, **SCHEDULES['aug_p']))


def test_a_resumed_run_takes_up_every_schedule_exactly(tmp_path, data16):
    for folder in ('a', 'b'):
        os.makedirs(tmp_path / folder)
    uninterrupted = train_launch.start(_scheduled_config(tmp_path / 'a' / 'runs', data16, kimg=KIMG), env={})
    train_launch.start(_scheduled_config(tmp_path / 'b' / 'runs', data16, kimg=0.008), env={})
    resumed = train_launch.start(_scheduled_config(tmp_path / 'b' / 'runs', data16, kimg=KIMG, resume='latest'), env={})
    expected, actual = final_snapshot_tensors(uninterrupted), final_snapshot_tensors(resumed)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
