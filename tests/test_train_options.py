"""The option table (training/cli/options.py) is the one source of every option: train.py's flags and their help,
the config's defaults, the checks of flag and preset values, the resume notice and docs/options.md."""

import json
import os

import click
import pytest
from click.testing import CliRunner

import train
from tests.train_helpers import tiny_options, write_image_folder
from training.cli import config as run_config
from training.cli import options as option_table
from training.cli import resume_source
from training.cli.presets import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def data16(tmp_path_factory):
    path = tmp_path_factory.mktemp('data') / 'images'
    write_image_folder(str(path), num_images=8, resolution=16)
    return str(path)


def _click_params():
    return {param.name: param for param in train.main.params}


def test_train_py_has_exactly_the_table_flags_in_table_order():
    assert [param.name for param in train.main.params] == [option.name for option in option_table.FLAGS]


def test_help_shows_each_flag_with_the_table_help_and_default():
    params = _click_params()
    for option in option_table.FLAGS:
        param = params[option.name]
        assert param.help == option.help and param.required == option.required
        assert param.default == option.default, option.name
        if option.default_text is not None:
            assert param.show_default == option.default_text
    text = CliRunner().invoke(train.main, ['--help'], terminal_width=200).output
    assert '[default: 0.6]' in text.split('--target', 1)[1].split('--augpipe', 1)[0]  # ADA's target, from the table.
    assert '[default: (from --cfg)]' in text.split('--gamma', 1)[1].split('--kimg', 1)[0]


def test_no_flag_help_writes_its_own_default():
    """Click shows the table's default; a help text that spells one out would be a second copy of it."""
    assert [option.name for option in option_table.OPTIONS if 'default' in option.help.lower()] == []


def test_resolved_config_takes_its_defaults_from_the_table(tmp_path, data16):
    options = dict(outdir=str(tmp_path / 'runs'), data=data16, device='cpu', metrics='none', cbase=512, cmax=32)
    config = run_config.resolve_config(options)
    default = {option.name: option.default for option in option_table.OPTIONS}
    assert config.ada_target == default['target']
    assert config.kimg_per_tick == default['tick'] and config.network_snapshot_ticks == default['snap']
    assert config.dist_timeout == default['dist_timeout'] and config.random_seed == default['seed']
    assert config.preempt_exit_code == default['preempt_exit_code']
    assert config.augment_kwargs == dict(class_name='training.augment.AugmentPipe',
                                         **__import__('training.augment', fromlist=['x']).augpipe_specs[default['augpipe']])
    assert config.G_kwargs.synthesis_kwargs.architecture == default['g_arch']
    squeeze = run_config.resolve_config(dict(options, g_arch='squeeze'))
    assert squeeze.G_kwargs.synthesis_kwargs.squeeze_ratio == default['squeeze_ratio']
    assert squeeze.G_kwargs.synthesis_kwargs.squeeze_ablation == default['squeeze_ablation']
    ggdr = run_config.resolve_config(dict(options, reg_type='ggdr'))
    assert ggdr.loss_kwargs.extra_terms[0].weight == default['ggdr_weight']
    assert run_config.DEFAULTS == option_table.defaults()


@pytest.mark.parametrize('name, value', [('tick', 0), ('seed', 2 ** 32), ('preempt_exit_code', 256), ('freezed', -1),
                                         ('target', 1.5), ('workers', -1), ('keep_snapshots', 0), ('gamma', -1)])
def test_a_flag_and_resolve_config_refuse_a_value_in_the_same_words(tmp_path, data16, name, value):
    option = option_table.BY_NAME[name]
    expected = f'{option_table.show_value(value)}: must be {option_table.accepted_text(option.accepted)}'
    with pytest.raises(ConfigError) as info:
        run_config.resolve_config(tiny_options(tmp_path / 'runs', data16, **{name: value}))
    assert str(info.value) == f'{option.flag_name}={expected}'
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', f'--data={data16}', f'{option.flag_name}={value}',
                                             '--dry-run'])
    assert result.exit_code == 2 and f'Error: {option.flag_name}={expected}\n' in result.output


def test_a_preset_value_is_checked_by_the_same_rule_as_its_flag(tmp_path):
    _name, spec = run_config.load_preset('cifar')
    path = tmp_path / 'my.json'
    path.write_text(json.dumps(dict(spec, gamma=-1)))
    accepted = option_table.accepted_text(option_table.BY_NAME['gamma'].accepted)
    with pytest.raises(ConfigError, match=f'gamma=-1: must be {accepted}$'):
        run_config.load_preset(str(path))


def test_a_preset_key_is_exactly_an_option_marked_preset():
    for name in run_config.list_presets():
        _name, spec = run_config.load_preset(name)
        assert sorted(spec) == sorted(option.name for option in option_table.OPTIONS  # Optional ones filled in.
                                      if option.preset or option.preset_optional)
        for key, value in spec.items():
            option = option_table.BY_NAME[key]
            assert value != 'auto' or option.auto, (name, key)


def test_every_config_entry_is_decided_by_an_option(tmp_path, data16):
    """config_keys is complete, so the resume notice knows, for every entry, whether a change is bookkeeping."""
    claimed = {key for option in option_table.OPTIONS for key in option.config_keys} | set(option_table.DERIVED_CONFIG_KEYS)
    for reg_type in ('none', 'ggdr'):
        config = run_config.resolve_config(tiny_options(tmp_path / 'runs', data16, reg_type=reg_type))
        assert sorted(set(config) - claimed) == []
    assert all(option.resume in ('free', 'reported') for option in option_table.OPTIONS)


def test_the_resume_notice_leaves_out_exactly_the_free_options(tmp_path, data16):
    old = run_config.resolve_config(tiny_options(tmp_path / 'runs', data16))
    changed = dict(snap=7, tick=0.5, metrics='none', kimg=5, keep_snapshots=2, preempt_exit_code=3, dist_timeout=60,
                   workers=1, grid='2x2', seed=5, gamma=3, aug='fixed', p=0.25)
    new = run_config.resolve_config(tiny_options(tmp_path / 'runs', data16, **changed))
    listed = [item.split(':')[0] for item in resume_source.option_differences(json.loads(json.dumps(old)), new)]
    assert sorted(listed) == ['augment_kwargs', 'augment_p', 'loss_kwargs.r1_gamma', 'random_seed',
                              'training_set_kwargs.random_seed']
    free = {option.name for option in option_table.OPTIONS if option.resume == 'free'}
    assert {'snap', 'tick', 'metrics', 'kimg', 'keep_snapshots', 'preempt_exit_code', 'dist_timeout', 'workers',
            'grid'} <= free and not {'seed', 'gamma', 'aug', 'p'} & free


def test_docs_options_md_is_generated_from_the_table():
    with open(os.path.join(ROOT, 'docs', 'options.md'), encoding='utf-8') as f:
        assert f.read() == option_table.markdown(), 'regenerate: python -m training.cli.options > docs/options.md'


def test_docs_list_every_option_once():
    text = option_table.markdown()
    for option in option_table.OPTIONS:
        cell = f'`{option.flag_name}`' if option.flag else f'`{option.name}`'
        assert text.count(f'| {cell} |') == 1, option.name


def test_choices_are_read_when_checked_so_a_registry_can_grow(monkeypatch):
    from training.networks import generator  # pylint: disable=import-outside-toplevel
    option = option_table.BY_NAME['g_arch']
    assert option_table.problem(option, 'mine') is not None
    monkeypatch.setitem(generator.SYNTHESIS_BLOCKS, 'mine', generator.SYNTHESIS_BLOCKS['skip'])
    assert option_table.problem(option, 'mine') is None
    assert 'mine' in option_table.TableValue(option).get_metavar(None)


@pytest.mark.parametrize('text, value', [('4', 4), ('0.5', 0.5)])
def test_a_flag_value_is_converted_by_the_table_kind(text, value):
    kind = 'whole' if isinstance(value, int) else 'number'
    option = next(o for o in option_table.FLAGS if o.accepted.kind == kind and o.accepted.check(value))
    assert option_table.TableValue(option).convert(text, None, None) == value
    with pytest.raises(click.UsageError, match=f'^{option.flag_name}=four: must be'):
        option_table.TableValue(option).convert('four', None, None)


def test_help_lists_every_preset_and_names_the_squeeze_papers():
    text = ' '.join(CliRunner().invoke(train.main, ['--help'], terminal_width=200).output.split())
    for name in run_config.list_presets():
        assert f'{name}: ' in text
    assert 'paper256: 256x256 (FFHQ, LSUN, AFHQ); the squeeze-connection paper, Table I' in text
    assert "squeeze-cifar: CIFAR-10 32x32 as the squeeze paper's Table I lists it" in text


def test_detector_dir_help_names_every_file_it_holds():
    from metrics import detectors, lpips  # pylint: disable=import-outside-toplevel
    help_text = option_table.BY_NAME['detector_dir'].help
    for file_name in [d.file_name for d in detectors.ALL_DETECTORS] + [lpips.ALEXNET.file_name, lpips.LPIPS_ALEX.file_name]:
        assert file_name in help_text
