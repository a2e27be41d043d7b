"""Config resolution: presets, 'auto' values, command-line overrides, validation errors and run-directory names."""

import json
import os
import re

import pytest
import torch
from click.testing import CliRunner

import train
from tests.train_helpers import TINY_ARGS, tiny_options, write_image_folder
from torch_utils import misc
from training.cli import config as training_config
from training.cli import options as option_table
from training.cli import run_dir as train_run_dir
from training.cli.config import ConfigError, resolve_config


@pytest.fixture(scope='module')
def data16(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp('data') / 'tiny16', num_images=4, resolution=16)


@pytest.fixture(scope='module')
def labelled16(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp('data') / 'lab16', num_images=4, resolution=16, labels=[0, 1])


def resolve(tmp_path, data, **overrides):
    return resolve_config(tiny_options(tmp_path / 'runs', data, **overrides))


def test_every_preset_file_loads_with_exactly_the_preset_keys():
    for name in training_config.list_presets():
        cfg_name, spec = training_config.load_preset(name)
        assert cfg_name == name
        assert sorted(spec) == sorted(option_table.PRESET_KEYS + option_table.OPTIONAL_PRESET_KEYS)


def test_paper256_preset_matches_the_squeeze_paper_table_one():
    _, spec = training_config.load_preset('paper256')
    assert (spec.batch, spec.mbstd_group, spec.lrate, spec.gamma, spec.ema_kimg, spec.map) == (64, 8, 0.0025, 1, 20, 8)
    assert spec.kimg == 25000 and spec.fmaps == 0.5


def test_cifar_preset_has_stylegan2_ada_values(tmp_path, data16):
    config = resolve_config(dict(outdir=str(tmp_path), data=data16, cfg='cifar', metrics='none', device='cpu'))
    assert config.batch_size == 64 and config.batch_gpu == 32  # ref_gpus=2 on one process: 2 accumulation rounds.
    assert config.D_kwargs.epilogue_kwargs.mbstd_group_size == 32
    assert config.loss_kwargs == dict(class_name='training.loss.StyleGAN2Loss', r1_gamma=0.01, style_mixing_prob=0, pl_weight=0,
                                      check_finite=True)
    assert config.D_kwargs.architecture == 'orig' and config.G_kwargs.mapping_kwargs.num_layers == 2
    assert config.ema_kimg == 500 and config.ema_rampup == 0.05 and config.total_kimg == 100000
    assert config.G_opt_kwargs.lr == 0.0025 and config.G_opt_kwargs.betas == [0, 0.99]


def test_auto_preset_derives_batch_gamma_and_ema_from_resolution_and_gpus():
    _, spec = training_config.load_preset('auto')
    spec = training_config.resolve_auto(spec, resolution=256, gpus=2)
    assert spec.batch == 32 and spec.mbstd_group == 4 and spec.fmaps == 0.5 and spec.lrate == 0.0025
    assert spec.gamma == pytest.approx(0.0002 * 256 ** 2 / 32) and spec.ema_kimg == 10
    spec = training_config.resolve_auto(training_config.load_preset('auto')[1], resolution=1024, gpus=8)
    assert spec.batch == 32 and spec.fmaps == 1 and spec.lrate == 0.002


def test_command_line_overrides_the_preset(tmp_path, data16):
    config = resolve(tmp_path, data16, cfg='paper256', gamma=3.5, kimg=0.5, d_arch='skip', cbase=1024, cmax=64, map=3)
    assert config.loss_kwargs.r1_gamma == 3.5 and config.total_kimg == 0.5
    assert config.D_kwargs.architecture == 'skip' and config.G_kwargs.mapping_kwargs.num_layers == 3
    assert config.G_kwargs.synthesis_kwargs.channel_base == 1024 == config.D_kwargs.channel_base
    assert config.G_kwargs.synthesis_kwargs.channel_max == 64 == config.D_kwargs.channel_max


def test_preset_given_as_a_json_path_is_used(tmp_path, data16):
    _, spec = training_config.load_preset('paper512')
    path = tmp_path / 'mine.json'
    path.write_text(json.dumps(dict(spec, gamma=7)))
    config = resolve(tmp_path, data16, cfg=str(path), gamma=None)
    assert config.cfg == 'mine' and config.loss_kwargs.r1_gamma == 7


def test_squeeze_generator_gets_ratio_and_ablation(tmp_path, data16):
    config = resolve(tmp_path, data16, g_arch='squeeze', squeeze_ratio=4, squeeze_ablation='no_blend')
    synthesis = config.G_kwargs.synthesis_kwargs
    assert (synthesis.architecture, synthesis.squeeze_ratio, synthesis.squeeze_ablation) == ('squeeze', 4, 'no_blend')
    assert 'squeeze_ratio' not in resolve(tmp_path, data16).G_kwargs.synthesis_kwargs


def test_fp32_disables_fp16_layers_and_clamping(tmp_path, data16):
    config = resolve(tmp_path, data16, fp32=False)
    assert config.G_kwargs.synthesis_kwargs.num_fp16_res == 4 and config.D_kwargs.conv_clamp == 256
    config = resolve(tmp_path, data16, fp32=True)
    assert config.G_kwargs.synthesis_kwargs.num_fp16_res == 0 and config.D_kwargs.conv_clamp is None


def test_ada_defaults_and_fixed_probability(tmp_path, data16):
    config = resolve(tmp_path, data16, aug='ada')
    assert config.ada_target == 0.6 and config.augment_p == 0 and config.augment_kwargs.class_name == 'training.augment.AugmentPipe'
    config = resolve(tmp_path, data16, aug='fixed', p=0.3, augpipe='bg')
    assert config.ada_target is None and config.augment_p == 0.3 and 'brightness' not in config.augment_kwargs
    assert resolve(tmp_path, data16, aug='noaug').augment_kwargs is None


def test_torchrun_world_size_sets_the_number_of_processes(tmp_path, data16):
    config = resolve_config(tiny_options(tmp_path, data16), env={'WORLD_SIZE': '2', 'RANK': '1'})
    assert config.num_processes == 2 and config.batch_gpu == 2


@pytest.mark.parametrize('overrides, message', [
    (dict(cfg='nosuch'), '--cfg=nosuch: no such preset'),
    (dict(gpus=3), '--gpus=3'),
    (dict(batch=6, gpus=4), '--batch=6 must be a multiple'),
    (dict(batch_gpu=3), '--batch-gpu=3'),
    (dict(cond=True), '--cond'),
    (dict(aug='noaug', p=0.2), '--p=0.2 only applies to --aug=fixed'),
    (dict(aug='ada', target=1.5), '--target=1.5'),
    (dict(aug='fixed'), '--aug=fixed needs --p'),
    (dict(aug='ada', augpipe='nosuch'), '--augpipe=nosuch'),
    (dict(g_arch='skip', squeeze_ratio=4), '--squeeze-ratio only applies to --g-arch=squeeze'),
    (dict(g_arch='squeeze', squeeze_ablation='nosuch'), '--squeeze-ablation=nosuch'),
    (dict(metrics='fid50k_full,nosuch'), '--metrics=nosuch'),
    (dict(resume='missing.pkl'), '--resume=missing.pkl: file not found'),
    (dict(resume='latest'), '--resume=latest: no complete snapshot'),
    (dict(kimg=-1), '--kimg=-1'),
    (dict(device='cuda'), '--device=cuda'),
    (dict(kimg=float('inf')), '--kimg=inf: must be a positive finite number'),
    (dict(tick=float('nan')), '--tick=nan: must be a positive finite number'),
    (dict(gamma=float('inf')), '--gamma=inf: must be a finite number >= 0'),
    (dict(map=0), '--map=0: must be a whole number >= 1'),
    (dict(d_arch='squeeze'), '--d-arch=squeeze: must be one of orig, skip, resnet'),
])
def test_bad_options_give_one_line_errors_naming_the_flag(tmp_path, data16, overrides, message):
    with pytest.raises(ConfigError) as info:
        resolve_config(tiny_options(tmp_path / 'runs', data16, **overrides), env={}, cuda_available=False)
    assert message in str(info.value) and '\n' not in str(info.value)


def test_resume_of_a_run_folder_or_a_resume_state_names_the_snapshot_to_pass(tmp_path, data16):
    run = tmp_path / 'runs' / '00000-old'
    run.mkdir(parents=True)
    for name in ('network-snapshot-000000.pkl', 'network-snapshot-000000_012img.pkl', 'network-snapshot-000000_012img.resume.pt'):
        (run / name).write_bytes(b'')
    with pytest.raises(ConfigError) as info:
        resolve(tmp_path, data16, resume=str(run))
    assert str(info.value).startswith(f'--resume={run}: a folder, not a network file; ')
    assert f'the newest: {run / "network-snapshot-000000_012img.pkl"} (or --resume=latest' in str(info.value)
    with pytest.raises(ConfigError) as info:
        resolve(tmp_path, data16, resume=str(run / 'network-snapshot-000000_012img.resume.pt'))
    assert str(info.value) == (f'--resume={run / "network-snapshot-000000_012img.resume.pt"}: a resume state; pass the '
                               f'snapshot it belongs to, {run / "network-snapshot-000000_012img.pkl"}, and the state '
                               f'beside it is read too')


def test_missing_or_unreadable_dataset_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match='--data=.*not found'):
        resolve(tmp_path, tmp_path / 'nothing.zip')
    (tmp_path / 'bad.zip').write_bytes(b'not a zip')
    with pytest.raises(ConfigError, match='--data: .*bad.zip'):
        resolve(tmp_path, tmp_path / 'bad.zip')


def test_conditional_training_uses_labels(tmp_path, labelled16):
    config = resolve(tmp_path, labelled16, cond=True)
    assert config.training_set_kwargs.use_labels and 'cond' in config.run_desc.split('-')


def test_run_description_starts_with_dataset_cfg_gpus_and_generator(tmp_path, data16):
    config = resolve(tmp_path, data16, g_arch='squeeze', mirror=True, gamma=2)
    assert config.run_desc.startswith('tiny16-auto1-squeeze-')
    assert 'mirror' in config.run_desc and 'gamma2' in config.run_desc


def test_pl_weight_flag_overrides_the_preset(tmp_path, data16):
    assert resolve(tmp_path, data16).loss_kwargs.pl_weight == 2  # auto's value.
    config = resolve(tmp_path, data16, pl_weight=0)
    assert config.loss_kwargs.pl_weight == 0 and 'pl0' in config.run_desc.split('-')
    assert resolve(tmp_path, data16, cfg='cifar', pl_weight=0.5).loss_kwargs.pl_weight == 0.5  # cifar's is 0.


def test_run_dirs_are_numbered_after_existing_ones_and_never_reused(tmp_path):
    (tmp_path / '00007-old').mkdir()
    (tmp_path / '00007-old' / 'training_options.json').write_text('{}')
    (tmp_path / '00009-not-a-run').mkdir()  # No training_options.json: a user's folder.
    (tmp_path / 'notes').mkdir()
    first = train_run_dir.create_run_dir(str(tmp_path), 'x-auto1-skip')
    second = train_run_dir.create_run_dir(str(tmp_path), 'x-auto1-skip')
    assert os.path.basename(first) == '00008-x-auto1-skip' and os.path.basename(second) == '00009-x-auto1-skip'


def test_resume_latest_picks_the_newest_complete_snapshot(tmp_path, data16):
    runs = tmp_path / 'runs'
    for run, kimg, complete in [('00000-a', 8, True), ('00001-a', 4, True), ('00001-a', 12, False)]:
        (runs / run).mkdir(parents=True, exist_ok=True)
        (runs / run / 'training_options.json').write_text('{}')
        (runs / run / f'network-snapshot-{kimg:06d}.pkl').write_bytes(b'x')
        if complete:
            (runs / run / f'network-snapshot-{kimg:06d}.resume.pt').write_bytes(b'x')
    config = resolve(tmp_path, data16, resume='latest')
    assert config.resume_pkl.endswith(os.path.join('00001-a', 'network-snapshot-000004.pkl'))
    assert config.resume_state.endswith('network-snapshot-000004.resume.pt')


def test_transfer_learning_source_names_resolve_to_urls(tmp_path, data16):
    config = resolve(tmp_path, data16, resume='ffhq256')
    assert config.resume_pkl.startswith('https://') and config.resume_state is None
    assert config.ada_kimg == 100 and config.ema_rampup is None


# Tiny options: cbase=512, cmax=32 at 16x16, so the squeeze blocks (8x8, 16x16) both have 32 channels.
@pytest.mark.parametrize('ratio', [3, 64, 2.5])
def test_squeeze_ratio_must_divide_every_squeeze_block_width(tmp_path, data16, ratio):
    with pytest.raises(ConfigError) as info:
        resolve(tmp_path, data16, g_arch='squeeze', squeeze_ratio=ratio)
    message = str(info.value)
    assert message.startswith(f'--squeeze-ratio={ratio:g}: must divide') and '\n' not in message
    assert 'channels (32)' in message and message.endswith('accepted: 1, 2, 4, 8, 16, 32')


@pytest.mark.parametrize('ratio', [0, -2, float('nan'), float('inf')])
def test_squeeze_ratio_below_one_or_not_finite_is_refused_by_the_option_table(tmp_path, data16, ratio):
    with pytest.raises(ConfigError, match=rf'^--squeeze-ratio={ratio:g}: must be a finite number >= 1$'):
        resolve(tmp_path, data16, g_arch='squeeze', squeeze_ratio=ratio)


@pytest.mark.parametrize('ratio', [1, 4.0, 32])
def test_squeeze_ratios_dividing_every_block_width_are_accepted(tmp_path, data16, ratio):
    config = resolve(tmp_path, data16, g_arch='squeeze', squeeze_ratio=ratio)
    assert config.G_kwargs.synthesis_kwargs.squeeze_ratio == ratio


def test_accepted_squeeze_ratios_follow_cbase_and_cmax(tmp_path, data16):
    with pytest.raises(ConfigError, match=r'channels \(16, 32\) .*accepted: 1, 2, 4, 8, 16$'):
        resolve(tmp_path, data16, g_arch='squeeze', cbase=256, cmax=64, squeeze_ratio=32)


def test_squeeze_ratio_is_checked_for_network_summaries_too():
    with pytest.raises(ConfigError, match='--squeeze-ratio=3: must divide'):
        training_config.preset_network_kwargs('paper256', 256, g_arch='squeeze', squeeze_ratio=3)


@pytest.mark.parametrize('where, message', [('file', 'is a file, not a folder'), ('file/runs', 'lies under')])
def test_outdir_that_is_or_lies_under_a_file_is_a_config_error(tmp_path, data16, where, message):
    (tmp_path / 'file').write_bytes(b'keep me')
    with pytest.raises(ConfigError) as info:
        resolve_config(tiny_options(tmp_path / where, data16))
    assert str(info.value).startswith(f'--outdir={tmp_path / where}: ') and message in str(info.value)
    assert (tmp_path / 'file').read_bytes() == b'keep me'


@pytest.mark.parametrize('args, message', [
    (['--g-arch=squeeze', '--squeeze-ratio=3'], 'accepted: 1, 2, 4, 8, 16, 32'),
    (['--g-arch=squeeze', '--squeeze-ratio=nan'], '--squeeze-ratio=nan: must be a finite number >= 1'),
    (['--outdir=FILE'], 'is a file, not a folder'),
])
def test_dry_run_refuses_with_one_usage_line(tmp_path, data16, args, message):
    (tmp_path / 'FILE').write_bytes(b'')
    args = [arg.replace('FILE', str(tmp_path / 'FILE')) for arg in args]
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', f'--data={data16}', *TINY_ARGS, *args,
                                             '--dry-run'])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output  # Not an uncaught exception.
    error_lines = [line for line in result.output.splitlines() if line.startswith('Error:')]
    assert len(error_lines) == 1 and message in error_lines[0], result.output
    assert not (tmp_path / 'runs').exists()


def test_fixed_augmentation_with_p_zero_builds_no_pipe_as_stylegan2_ada_does(tmp_path, data16):
    config = resolve(tmp_path, data16, aug='fixed', p=0)
    assert config.augment_kwargs is None and config.augment_p == 0
    assert resolve(tmp_path, data16, aug='fixed', p=0.2).augment_kwargs is not None


def test_non_finite_losses_stop_training_unless_asked_to_go_on(tmp_path, data16):
    assert resolve(tmp_path, data16).loss_kwargs.check_finite is True
    assert resolve(tmp_path, data16, stop_on_nonfinite=False).loss_kwargs.check_finite is False
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path}', f'--data={data16}', *TINY_ARGS,
                                             '--stop-on-nonfinite=0', '--dry-run'])
    assert result.exit_code == 0 and json.loads(result.stdout)['loss_kwargs']['check_finite'] is False


def test_more_gpus_than_visible_cuda_devices_is_one_line(tmp_path, data16):
    with pytest.raises(ConfigError, match=r'--gpus=4: only 2 CUDA device\(s\) are visible here .*accepted: 1 to 2'):
        resolve_config(tiny_options(tmp_path / 'runs', data16, gpus=4, device='cuda'), env={}, cuda_available=True,
                       cuda_devices=2)
    config = resolve_config(tiny_options(tmp_path / 'runs', data16, gpus=2, device='cuda'), env={}, cuda_available=True,
                            cuda_devices=2)
    assert config.num_processes == 2


def test_dist_timeout_reaches_the_process_group_and_must_be_positive(tmp_path, data16, monkeypatch):
    from training.cli import launch  # pylint: disable=import-outside-toplevel
    assert resolve(tmp_path, data16).dist_timeout == 1800  # torch's own gloo default
    config = resolve(tmp_path, data16, dist_timeout=90)
    joined = {}
    monkeypatch.setattr(launch.torch.distributed, 'init_process_group', lambda **kwargs: joined.update(kwargs))
    launch._init_process_group(config, 0, 0, 'file:///nowhere')  # pylint: disable=protected-access
    assert joined['timeout'].total_seconds() == 90 and joined['backend'] == 'gloo'
    for bad in (0, -5, float('nan'), float('inf')):
        with pytest.raises(ConfigError, match=rf'--dist-timeout={bad}: must be a positive finite number'):
            resolve(tmp_path, data16, dist_timeout=bad)


@pytest.mark.parametrize('key, value, accepted', [
    ('lrate', 'fast', 'a positive finite number'),
    ('batch', '64', 'a whole number >= 1'),
    ('betas', [0.9], 'a list of two numbers in [0, 1)'),
    ('mbstd_group', 0, 'a whole number >= 1'),
    ('gamma', -1, 'a finite number >= 0'),
    ('style_mixing_prob', 2, 'a number in [0, 1]'),
    ('d_arch', 'squeeze', 'one of orig, skip, resnet'),
    ('g_reg_interval', 0.5, 'a whole number >= 1 or null'),
    ('num_fp16_res', True, 'a whole number >= 0'),
])
def test_a_preset_value_of_the_wrong_type_or_range_is_one_line(tmp_path, data16, key, value, accepted):
    _, spec = training_config.load_preset('cifar')
    spec[key] = value
    path = tmp_path / 'my.json'
    path.write_text(json.dumps(spec))
    with pytest.raises(ConfigError, match=rf'^--cfg={path}: {key}={re.escape(json.dumps(value))}: must be {re.escape(accepted)}$'):
        resolve(tmp_path, data16, cfg=str(path))


def test_a_block_registered_in_one_line_is_a_g_arch_that_trains(tmp_path, data16, monkeypatch):
    from training import training_loop  # pylint: disable=import-outside-toplevel
    from training.networks.generator import SYNTHESIS_BLOCKS  # pylint: disable=import-outside-toplevel
    from training.networks.synthesis import SynthesisBlock  # pylint: disable=import-outside-toplevel

    calls = []

    class CountingBlock(SynthesisBlock):
        """A new connection type as a user would add it: one class (here skip's, counting its calls)."""
        ARCHITECTURES = ('counting', 'skip')

        def __init__(self, *args, architecture='counting', **kwargs):
            assert architecture == 'counting'
            super().__init__(*args, architecture='skip', **kwargs)

        def forward(self, *args, **kwargs):
            calls.append(self.resolution)
            return super().forward(*args, **kwargs)

    monkeypatch.setitem(SYNTHESIS_BLOCKS, 'counting', CountingBlock)  # The one registry line.
    dry = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', f'--data={data16}', *TINY_ARGS,
                                          '--g-arch=counting', '--dry-run'])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)['run_desc'].startswith('tiny16-auto1-counting-')
    config = resolve(tmp_path, data16, g_arch='counting')
    run = training_loop.build_run(dict(config, run_dir=None))
    run.preemption.uninstall()
    before = [p.clone() for p in run.nets.G.parameters()]
    run.train_step()
    assert calls and any(not torch.equal(a, b) for a, b in zip(before, run.nets.G.parameters()))


@pytest.mark.parametrize('flag, key, value', [('gamma', 'gamma', -1), ('map', 'map', 0), ('batch', 'batch', 0),
                                              ('kimg', 'kimg', -2)])
def test_a_flag_and_the_preset_value_it_overrides_share_one_rule_and_message(tmp_path, data16, flag, key, value):
    with pytest.raises(ConfigError) as from_flag:
        resolve(tmp_path, data16, **{flag: value})
    _, spec = training_config.load_preset('cifar')
    spec[key] = value
    path = tmp_path / 'my.json'
    path.write_text(json.dumps(spec))
    with pytest.raises(ConfigError) as from_preset:
        resolve(tmp_path, data16, cfg=str(path))
    assert str(from_flag.value).split(': ', 1) == [f'--{flag}={value}', str(from_preset.value).split(': ', 2)[2]]


@pytest.mark.parametrize('allow', [False, True])
def test_allow_tf32_sets_both_switches_for_the_run(tmp_path, data16, allow):
    from training import training_loop  # pylint: disable=import-outside-toplevel
    previous = misc.set_tf32(not allow)
    try:
        run = training_loop.build_run(dict(resolve(tmp_path, data16, allow_tf32=allow), run_dir=None))
        run.preemption.uninstall()
        assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (allow, allow)
    finally:
        misc.set_tf32(previous)
