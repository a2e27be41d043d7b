"""Every training option, declared once: the table that train.py's flags, the config defaults, the checks of flag and
preset values, the resume notice and docs/options.md are made from."""

# An Option is a flag of train.py (flag=True), a key of a preset in configs/ (preset=True), or both (--gamma
# overrides a preset's gamma). Its `accepted` says what values it takes, in one wording that click's
# errors, resolve_config's ConfigError and a bad configs/my.json all use. `config_keys` names the entries of
# the resolved config (training_options.json) it decides; `resume` says whether changing it when resuming is
# bookkeeping ('free': where and how the run is kept or watched) or is reported as a change of what is
# trained ('reported'). `python -m training.cli.options` prints the table as docs/options.md holds it.

import dataclasses
import json
import math
import numbers
import os
import typing

import click

from metrics import detectors
from metrics import lpips
from training.augment import augpipe_specs
from training.networks.generator import SYNTHESIS_BLOCKS
from training.networks.squeeze import SQUEEZE_ABLATIONS
from training.run import schedules as run_schedules

#----------------------------------------------------------------------------
# What a value may be.

def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_whole(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class Accepted:
    """What values an option takes: `check(value)` says whether one fits, `text` says what fits (after 'must be')."""
    kind:       str                         # 'whole', 'number', 'choice', 'bool', 'switch' or 'text': the flag's type.
    text:       str                         # 'a whole number >= 1', 'one of ada, noaug, fixed', ...
    check:      typing.Callable             # value -> bool.
    choices:    typing.Callable = None      # 'choice': () -> the names, read when asked (a registry may grow).
    metavar:    str = None                  # 'text': the flag's placeholder (DIR, LIST, ...).


def whole(minimum, maximum=None):
    text = f'a whole number >= {minimum}' if maximum is None else f'a whole number from {minimum} to {maximum}'
    return Accepted('whole', text, lambda v: _is_whole(v) and v >= minimum and (maximum is None or v <= maximum))


def number(minimum=None, maximum=None, above=None):
    """A finite number; `minimum`/`maximum` inclusive, `above` exclusive."""
    if above is not None:
        text, test = ('a positive finite number', lambda v: v > 0) if above == 0 else \
                     (f'a finite number > {above:g}', lambda v: v > above)
    elif maximum is not None:
        text, test = f'a number in [{minimum:g}, {maximum:g}]', lambda v: minimum <= v <= maximum
    elif minimum is not None:
        text, test = f'a finite number >= {minimum:g}', lambda v: v >= minimum
    else:
        text, test = 'a finite number', lambda v: True
    return Accepted('number', text, lambda v: _is_number(v) and test(v))


def choice(names):
    """One of `names`: a tuple, or a callable returning them (a registry that may grow after import)."""
    read = names if callable(names) else (lambda: tuple(names))
    return Accepted('choice', '', lambda v: v in read(), choices=read)


def text(metavar):
    return Accepted('text', 'text', lambda v: isinstance(v, str), metavar=metavar)


BOOL = Accepted('bool', '0 or 1', lambda v: isinstance(v, bool))
SCHEDULES = Accepted('schedules', 'an object {setting: {"start": a, "end": b, "kimg": k}} with settings '
                     + ', '.join(run_schedules.SCHEDULED), lambda v: run_schedules.schedule_problem(v) is None)
SWITCH = Accepted('switch', 'a switch', lambda v: isinstance(v, bool))
BETAS = Accepted('list', 'a list of two numbers in [0, 1)',
                 lambda v: isinstance(v, list) and len(v) == 2 and all(_is_number(b) and 0 <= b < 1 for b in v))


def accepted_text(accepted):
    """What `accepted` takes, worded for an error message (choices read now)."""
    return f'one of {", ".join(accepted.choices())}' if accepted.kind == 'choice' else accepted.text

#----------------------------------------------------------------------------
# The table.

@dataclasses.dataclass(frozen=True)
class Option:
    name:           str                     # Python name; the flag is --name with '-' for '_', a preset key is the name.
    accepted:       Accepted                # What values it takes.
    help:           str                     # One line, for --help and docs/options.md.
    group:          str                     # Where --help and the docs list it.
    default:        object = None           # The value when not given; None: not given, or worked out (default_text).
    default_text:   str = None              # Says how a None default is worked out ('from --cfg', 'all', ...).
    flag:           bool = True             # A flag of train.py.
    preset:         bool = False            # A key that presets (configs/*.json, --cfg=FILE) must give.
    preset_optional: bool = False           # A key that presets may give...
    preset_default: object = None           # ... and its value when a preset leaves it out.
    auto:           bool = False            # The preset value may be "auto" (worked out from resolution and GPUs).
    nullable:       bool = False            # The preset value may be null.
    required:       bool = False            # The flag must be given.
    resume:         str = 'reported'        # Changed on resume: 'free' (bookkeeping) or 'reported' (in the notice).
    config_keys:    tuple = ()              # Entries of the resolved config it decides.

    @property
    def flag_name(self):
        return '--' + self.name.replace('_', '-')

    def shown_default(self):
        """The default as --help and the docs show it, or None when there is none to show."""
        if self.default_text is not None:
            return self.default_text
        if self.default is None or self.accepted.kind == 'switch':
            return None
        if isinstance(self.default, bool):
            return str(int(self.default))
        return f'{self.default:g}' if isinstance(self.default, float) else str(self.default)


def _opt(name, accepted, help, group, **kwargs):  # pylint: disable=redefined-builtin
    return Option(name=name, accepted=accepted, help=help, group=group, **kwargs)


FROM_CFG = 'from --cfg'
PRESET_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'configs')


def _preset_lines():
    """'name: first sentence of its description' for every configs/<name>.json, read when the table is built."""
    lines = []
    for file_name in sorted(f for f in os.listdir(PRESET_DIR) if f.endswith('.json')):
        with open(os.path.join(PRESET_DIR, file_name), encoding='utf-8') as f:
            description = json.load(f).get('description', '')
        lines.append(f'{file_name[:-5]}: {description.split(". ")[0].rstrip(".")}')
    return lines


_DETECTOR_FILES = ', '.join([d.file_name for d in detectors.ALL_DETECTORS] +
                            [lpips.ALEXNET.file_name, lpips.LPIPS_ALEX.file_name])
AUG_MODES = ('ada', 'noaug', 'fixed')
D_ARCHS = ('orig', 'skip', 'resnet')
REG_TYPES = ('none', 'ggdr', 'glead')
LOSSES = ('ns', 'rpgan')
LOSS_CLASSES = {'ns': 'training.loss.StyleGAN2Loss', 'rpgan': 'training.rpgan.RpGANLoss'}
GLEAD_FAKE = ('image', 'feature')  # Pure GLeaD (the paper's GLeaD rows) or GLeaD + GGDR's cosine term.

OPTIONS = (
    # General.
    _opt('outdir', text('DIR'), 'Where to make the run directory', 'General', required=True, resume='free',
         config_keys=('outdir', 'run_dir', 'run_desc')),
    _opt('data', text('PATH'), 'Training data (folder or zip from dataset_tool.py)', 'General', required=True,
         config_keys=('training_set_kwargs',)),
    _opt('gpus', whole(1), 'Number of GPUs (processes); a power of two', 'General',
         default_text='1; WORLD_SIZE under torchrun', config_keys=('num_processes',)),
    _opt('device', choice(('cuda', 'cpu')), 'Device to train on', 'General',
         default_text='cuda when available, else cpu', config_keys=('device',)),
    _opt('snap', whole(1), 'Snapshot interval in ticks', 'General', default=50, resume='free',
         config_keys=('network_snapshot_ticks', 'image_snapshot_ticks')),
    _opt('keep_snapshots', whole(1), 'Keep only the newest N snapshot pairs of the run', 'General', default_text='all',
         resume='free', config_keys=('keep_snapshots',)),
    _opt('tick', number(above=0), 'Progress interval in kimg, fractions allowed', 'General', default=4, resume='free',
         config_keys=('kimg_per_tick',)),
    _opt('metrics', text('LIST'), 'Comma-separated metrics or "none"', 'General', default='fid50k_full', resume='free',
         config_keys=('metrics',)),
    _opt('seed', whole(0, 2 ** 32 - 1), 'Random seed', 'General', default=0, config_keys=('random_seed',)),
    _opt('dry_run', SWITCH, 'Print the resolved configuration and exit', 'General', default=False, resume='free'),
    _opt('grid', text('COLSxROWS'), 'Snapshot grid as COLSxROWS', 'General',
         default_text='from resolution and dataset size, <= 12x8', resume='free', config_keys=('grid_size',)),
    # Dataset.
    _opt('cond', BOOL, 'Train a conditional model on the dataset labels', 'Dataset', default=False,
         config_keys=('training_set_kwargs',)),
    _opt('subset', whole(1), 'Train with only N images', 'Dataset', default_text='all',
         config_keys=('training_set_kwargs',)),
    _opt('mirror', BOOL, 'Add x-flipped copies of the images', 'Dataset', default=False,
         config_keys=('training_set_kwargs',)),
    # Base config and the preset values a flag may override.
    _opt('cfg', text('NAME|FILE'), 'Preset name (configs/<name>.json) or JSON path. ' + '; '.join(_preset_lines()),
         'Base config', default='auto', config_keys=('cfg',)),
    _opt('gamma', number(minimum=0), 'R1 regularisation weight', 'Base config', default_text=FROM_CFG, preset=True,
         auto=True, config_keys=('loss_kwargs',)),
    _opt('pl_weight', number(minimum=0), 'Path-length regularisation weight (0: off, which also skips its G pass)',
         'Base config', default_text=FROM_CFG, preset=True, config_keys=('loss_kwargs',)),
    _opt('kimg', number(above=0), 'Training length: the total in kimg the run trains to, counting what a resumed run '
         'already did; fractions allowed', 'Base config', default_text=FROM_CFG, preset=True, resume='free',
         config_keys=('total_kimg',)),
    _opt('batch', whole(1), 'Total batch size', 'Base config', default_text=FROM_CFG, preset=True, auto=True,
         config_keys=('batch_size',)),
    _opt('batch_gpu', whole(1), 'Samples per process and step (smaller = gradient accumulation)', 'Base config',
         default_text='batch / processes', config_keys=('batch_gpu',)),
    # Architecture.
    _opt('g_arch', choice(lambda: tuple(SYNTHESIS_BLOCKS)), 'Generator blocks (the block registry)', 'Architecture',
         default='skip', config_keys=('G_kwargs',)),
    _opt('squeeze_ratio', number(minimum=1), 'Channel squeeze ratio r of --g-arch=squeeze', 'Architecture', default=8,
         config_keys=('G_kwargs',)),
    _opt('squeeze_ablation', choice(lambda: tuple(SQUEEZE_ABLATIONS)), 'Squeeze-block ablation of the paper (Table VI)',
         'Architecture', default='none', config_keys=('G_kwargs',)),
    _opt('d_arch', choice(D_ARCHS), 'Discriminator blocks', 'Architecture', default_text=FROM_CFG, preset=True,
         config_keys=('D_kwargs',)),
    _opt('map', whole(1), 'Mapping network depth', 'Architecture', default_text=FROM_CFG, preset=True,
         config_keys=('G_kwargs',)),
    _opt('cbase', whole(1), 'Channel base (channels = min(cbase / res, cmax))', 'Architecture',
         default_text='fmaps x 32768 of --cfg', config_keys=('G_kwargs', 'D_kwargs')),
    _opt('cmax', whole(1), 'Maximum channels per layer', 'Architecture', default_text=FROM_CFG, preset=True,
         config_keys=('G_kwargs', 'D_kwargs')),
    # Augmentation.
    _opt('aug', choice(AUG_MODES), 'Augmentation mode', 'Augmentation', default='ada',
         config_keys=('augment_kwargs', 'augment_p', 'ada_target')),
    _opt('p', number(0, 1), 'Augmentation probability for --aug=fixed', 'Augmentation',
         default_text='none; needed by --aug=fixed', config_keys=('augment_p',)),
    _opt('target', number(0, 1), 'ADA target value for --aug=ada', 'Augmentation', default=0.6,
         config_keys=('ada_target',)),
    _opt('augpipe', choice(lambda: tuple(sorted(augpipe_specs))), 'Augmentation pipeline', 'Augmentation',
         default='bgc', config_keys=('augment_kwargs',)),
    # Objective.
    _opt('loss', choice(LOSSES), 'Objective: ns (non-saturating logistic, R1) or rpgan (relativistic pairing, R1 + '
         'R2, R3GAN)', 'Objective', default_text="--cfg's, else ns", preset_optional=True, preset_default='ns',
         config_keys=('loss_kwargs',)),
    _opt('t_start_kimg', number(minimum=0), 'Transitional conditioning (Shahbazi et al. 2022): train unconditionally up '
         'to this kimg, then blend the labels in; needs --cond=1 and --t-end-kimg', 'Objective', default_text='none',
         config_keys=('cond_transition', 'G_kwargs', 'D_kwargs', 'loss_kwargs')),
    _opt('t_end_kimg', number(minimum=0), 'Transitional conditioning: fully conditional from this kimg on (>= '
         '--t-start-kimg)', 'Objective', default_text='none',
         config_keys=('cond_transition', 'G_kwargs', 'D_kwargs', 'loss_kwargs')),
    _opt('reg_every', whole(1), "Run D's gradient penalties (R1, and R2 under rpgan) every N steps with gain N "
         '(lazy, rescaled optimizer); 1: every step, in the main pass', 'Objective',
         default_text='d_reg_interval of --cfg', config_keys=('D_reg_interval', 'D_opt_kwargs')),
    # Discriminator regularisers.
    _opt('reg_type', choice(REG_TYPES), 'D regulariser', 'Regularisers', default='none',
         config_keys=('reg_type', 'D_kwargs', 'loss_kwargs')),
    _opt('ggdr_res', whole(8), 'GGDR: resolution of the G features D predicts', 'Regularisers',
         default_text='resolution/4, 8..64', config_keys=('D_kwargs', 'loss_kwargs')),
    _opt('ggdr_weight', number(above=0), 'GGDR: loss weight', 'Regularisers', default=10,
         config_keys=('loss_kwargs',)),
    _opt('glead_res_d', whole(8), "GLeaD: resolution of D's decoder and heads", 'Regularisers',
         default_text='resolution/4, 8..64', config_keys=('D_kwargs', 'loss_kwargs')),
    _opt('glead_res_g', whole(8), 'GLeaD: resolution G reconstructs from', 'Regularisers',
         default_text='resolution/4, 8..64', config_keys=('D_kwargs', 'loss_kwargs')),
    _opt('glead_fake', choice(GLEAD_FAKE), "GLeaD fake term: image (LPIPS, the paper's rows) or feature (GGDR cosine)",
         'Regularisers', default='image', config_keys=('loss_kwargs',)),
    _opt('glead_real_in_r1', BOOL, 'GLeaD: also apply the real term in the lazy R1 phase', 'Regularisers',
         default=True, config_keys=('loss_kwargs',)),
    _opt('detector_dir', text('DIR'), f'Folder with the metrics\' detector files and GLeaD\'s LPIPS weights ({_DETECTOR_FILES}); '
         f'nothing is downloaded when it is given ({detectors.FETCH_COMMAND} fills one)', 'Regularisers',
         default_text='cache or download', resume='free', config_keys=('detector_dir',)),
    # Transfer learning and resume.
    _opt('resume', text('PKL'), 'Snapshot to resume from, "latest", a URL, a model name, or "noresume"', 'Resume',
         default_text='noresume', resume='free', config_keys=('resume_pkl', 'resume_state')),
    _opt('transfer', SWITCH, 'Allow --resume from networks of another architecture (copies the matching tensors)',
         'Resume', default=False, resume='free', config_keys=('allow_transfer',)),
    _opt('freezed', whole(0), 'Freeze-D: number of discriminator layers to freeze', 'Resume', default=0,
         config_keys=('D_kwargs',)),
    # Performance.
    _opt('fp32', BOOL, 'Disable mixed-precision training', 'Performance', default_text='1 on the CPU, 0 on CUDA',
         config_keys=('G_kwargs', 'D_kwargs')),
    _opt('nhwc', BOOL, 'Use NHWC memory format with FP16', 'Performance', default=False,
         config_keys=('G_kwargs', 'D_kwargs')),
    _opt('nobench', BOOL, 'Disable cuDNN benchmarking', 'Performance', default=False, config_keys=('cudnn_benchmark',)),
    _opt('allow_tf32', BOOL, 'Allow PyTorch to use TF32 internally', 'Performance', default=False,
         config_keys=('allow_tf32',)),
    _opt('stop_on_nonfinite', BOOL, 'Stop at a NaN/inf loss, naming it (0: go on with such gradients zeroed, as '
         'stylegan2-ada-pytorch does)', 'Performance', default=True, config_keys=('loss_kwargs',)),
    _opt('workers', whole(0), 'DataLoader worker processes', 'Performance',
         default_text='cores / processes - 1, at most 3', resume='free', config_keys=('data_loader_kwargs',)),
    _opt('threads', whole(1), "PyTorch's CPU threads per process", 'Performance',
         default_text='cores / processes - workers, at least 1', resume='free', config_keys=('num_threads',)),
    # Clusters.
    _opt('preempt_exit_code', whole(0, 255), 'Exit code after SIGTERM/SIGUSR1/SIGINT wrote a snapshot', 'Clusters',
         default=0, resume='free', config_keys=('preempt_exit_code',)),
    _opt('dist_timeout', number(above=0), 'Seconds a multi-process collective waits for a lost peer before the run '
         'stops with an error; must exceed the longest pause of rank 0 alone (a snapshot write)', 'Clusters',
         default=1800, resume='free', config_keys=('dist_timeout',)),
    # Preset values no flag overrides (configs/*.json keys).
    _opt('ref_gpus', whole(1), 'GPUs the preset batch was tuned for (--batch-gpu follows from it)', 'Preset',
         flag=False, preset=True, auto=True, config_keys=('batch_gpu',)),
    _opt('mbstd_group', whole(1), 'Minibatch-stddev group size of D', 'Preset', flag=False, preset=True, auto=True,
         config_keys=('D_kwargs',)),
    _opt('fmaps', number(above=0), 'Channel multiplier: channel base = fmaps x 32768', 'Preset', flag=False,
         preset=True, auto=True, config_keys=('G_kwargs', 'D_kwargs')),
    _opt('lrate', number(above=0), 'Adam learning rate of G and D', 'Preset', flag=False, preset=True, auto=True,
         config_keys=('G_opt_kwargs', 'D_opt_kwargs')),
    _opt('betas', BETAS, "Adam's betas", 'Preset', flag=False, preset=True, config_keys=('G_opt_kwargs', 'D_opt_kwargs')),
    _opt('eps', number(above=0), "Adam's epsilon", 'Preset', flag=False, preset=True,
         config_keys=('G_opt_kwargs', 'D_opt_kwargs')),
    _opt('ema_kimg', number(minimum=0), 'Half-life of the G_ema average in kimg', 'Preset', flag=False, preset=True,
         auto=True, config_keys=('ema_kimg',)),
    _opt('ema_rampup', number(minimum=0), 'G_ema half-life ramp-up as a fraction of images shown (null: none)',
         'Preset', flag=False, preset=True, nullable=True, config_keys=('ema_rampup',)),
    _opt('style_mixing_prob', number(0, 1), 'Probability of style mixing in a G step', 'Preset', flag=False,
         preset=True, config_keys=('loss_kwargs',)),
    _opt('g_reg_interval', whole(1), 'Lazy regularisation interval of G (null: every step, not lazy)', 'Preset',
         flag=False, preset=True, nullable=True, config_keys=('G_reg_interval', 'G_opt_kwargs')),
    _opt('d_reg_interval', whole(1), 'Lazy regularisation interval of D (null: every step, not lazy)', 'Preset',
         flag=False, preset=True, nullable=True, config_keys=('D_reg_interval', 'D_opt_kwargs')),
    _opt('num_fp16_res', whole(0), 'Highest resolutions run in fp16 (0: fp32 throughout)', 'Preset', flag=False,
         preset=True, config_keys=('G_kwargs', 'D_kwargs')),
    _opt('conv_clamp', number(above=0), 'Clamp of fp16 conv outputs (null: none)', 'Preset', flag=False, preset=True,
         nullable=True, config_keys=('G_kwargs', 'D_kwargs')),
    _opt('schedules', SCHEDULES, 'Cosine schedules evaluated every step (training/run/schedules.py); optional, '
         'null: none', 'Preset', flag=False, preset_optional=True, nullable=True, config_keys=('schedules',)),
)
BY_NAME = {option.name: option for option in OPTIONS}
FLAGS = tuple(option for option in OPTIONS if option.flag)
PRESET_KEYS = tuple(option.name for option in OPTIONS if option.preset)  # A preset holds all of these...
OPTIONAL_PRESET_KEYS = tuple(option.name for option in OPTIONS if option.preset_optional)  # ... and may hold these.
AUTO_KEYS = tuple(option.name for option in OPTIONS if option.auto)      # May be "auto" in a preset.
PRESET_FLAGS = tuple(option.name for option in FLAGS  # Flags that override a preset value.
                     if option.preset or option.preset_optional)
FREE_ON_RESUME = frozenset(key for option in OPTIONS if option.resume == 'free' for key in option.config_keys)
# Config entries that the loop's own defaults decide, no option: ADA's speed and interval, the EMA ramp-up's
# transfer-learning override.
DERIVED_CONFIG_KEYS = ('ada_kimg', 'ada_interval')


def defaults():
    """{name: default} of every flag; None = not given (or worked out: see the option's default_text)."""
    return {option.name: option.default for option in FLAGS}

#----------------------------------------------------------------------------
# Checking a value against the table.

def show_value(value, as_json=False):
    """A value as an error message shows it: floats short; as_json (a preset's value): as the JSON file writes it."""
    if isinstance(value, float):
        return f'{value:g}'
    return json.dumps(value) if as_json else str(value)


def problem(option, value, for_preset=False):
    """What is wrong with `value` for `option` ('must be ...'), or None when it fits."""
    if for_preset and option.nullable and value is None:
        return None
    if option.accepted.check(value):
        return None
    if option.accepted.kind == 'schedules':
        return f'must be {option.accepted.text}; {run_schedules.schedule_problem(value)}'
    if option.accepted.kind == 'number' and _is_whole(value) and option.accepted.check(float(value)):
        return None  # 4 for a number: JSON and Python write whole floats without the point.
    return f'must be {accepted_text(option.accepted)}{" or null" if for_preset and option.nullable else ""}'


def check_value(name, value, source, error, for_preset=False):
    """`value` if it fits option `name`, else raise error('SOURCE=VALUE: must be ...'). `source` names where it came
    from: '--gamma' for the flag, '--cfg=my.json: gamma' for a preset value (for_preset: null may be accepted).
    One rule, one wording, for both."""
    found = problem(BY_NAME[name], value, for_preset=for_preset)
    if found is not None:
        raise error(f'{source}={show_value(value, as_json=for_preset)}: {found}')
    return value

#----------------------------------------------------------------------------
# train.py's flags.

class TableValue(click.ParamType):
    """A flag's value, converted (whole number, number, text) and checked against its table entry; a bad one is the
    same line resolve_config gives for it ('--tick=0: must be a positive finite number')."""

    def __init__(self, option):
        self.option = option
        self.name = option.accepted.kind

    def convert(self, value, param, ctx):
        kind = self.option.accepted.kind
        parsed = value
        if isinstance(value, str) and kind in ('whole', 'number'):
            try:
                parsed = int(value) if kind == 'whole' else float(value)
            except ValueError:
                raise click.UsageError(f'{self.option.flag_name}={value}: must be '
                                       f'{accepted_text(self.option.accepted)}', ctx) from None
        found = problem(self.option, parsed)
        if found is not None:
            raise click.UsageError(f'{self.option.flag_name}={show_value(parsed)}: {found}', ctx)
        return parsed

    def get_metavar(self, param, ctx=None):  # pylint: disable=unused-argument
        accepted = self.option.accepted
        if accepted.kind == 'choice':
            return '[' + '|'.join(accepted.choices()) + ']'
        return {'whole': 'INT', 'number': 'FLOAT'}.get(accepted.kind, accepted.metavar)


def _click_kwargs(option):
    """click.option's arguments for `option`: click holds and shows the table's default (a worked-out one as its
    text); given_options() tells the values a user gave from click's defaults."""
    kwargs = dict(help=option.help, required=option.required, default=option.default,
                  show_default=option.default is not None or (option.default_text or False))
    if option.accepted.kind == 'switch':
        return dict(kwargs, is_flag=True, show_default=False)
    if option.accepted.kind == 'bool':  # stylegan2-ada-pytorch's switches take a value (--mirror=1); bare --mirror works.
        return dict(kwargs, type=bool, is_flag=False, flag_value=True, metavar='BOOL')
    return dict(kwargs, type=TableValue(option))


def given_options(ctx, values):
    """The values of `values` (a command's parameters) that came from the command line or the environment, not
    from the table's defaults: resolve_config fills those in itself and tells what was given (--target only
    applies to --aug=ada, the run's name lists what differs from the defaults)."""
    return {name: value for name, value in values.items()
            if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT}


def click_options(function):
    """Decorate a click command with every flag of the table, in the table's order."""
    for option in reversed(FLAGS):
        function = click.option(option.flag_name, **_click_kwargs(option))(function)
    return function

#----------------------------------------------------------------------------
# docs/options.md.

def markdown():
    """The table as docs/options.md holds it: flags by group, then the preset keys."""
    lines = ['# Training options', '',
             'Generated from `training/cli/options.py` by `python -m training.cli.options > docs/options.md`; '
             'a test keeps it current.', '',
             '"Resume" says what changing the option on `--resume` does: *free* options say where and how a run is '
             'kept or watched; a *reported* change is listed in the notice a resumed run logs.', '']
    groups = []
    for option in FLAGS:
        if option.group not in groups:
            groups.append(option.group)
    for group in groups:
        lines += [f'## {group}', '', '| flag | accepted | default | preset key | resume | meaning |',
                  '| --- | --- | --- | --- | --- | --- |']
        for option in FLAGS:
            if option.group == group:
                lines.append(_row(option.flag_name, option))
        lines.append('')
    lines += ['## Preset keys without a flag', '',
              'A preset (`configs/<name>.json`, or `--cfg=FILE`) holds every key marked in the preset column, '
              'and these (those marked optional it may leave out):', '', '| key | accepted | "auto" | resume | meaning |', '| --- | --- | --- | --- | --- |']
    for option in OPTIONS:
        if not option.flag:
            optional = 'Optional. ' if option.preset_optional else ''
            lines.append(f'| `{option.name}` | {_accepted_cell(option)} | {"yes" if option.auto else ""} | '
                         f'{option.resume} | {optional}{option.help} |')
    return '\n'.join(lines) + '\n'


def _accepted_cell(option):
    cell = accepted_text(option.accepted) if option.accepted.kind != 'text' else option.accepted.metavar
    return cell + (' or null' if option.nullable else '')


def _row(name, option):
    default = 'required' if option.required else (option.shown_default() or '')
    preset = f'`{option.name}`' + (' (or "auto")' if option.auto else '') if option.preset else ''
    preset = f'`{option.name}` (optional)' if option.preset_optional else preset
    return f'| `{name}` | {_accepted_cell(option)} | {default} | {preset} | {option.resume} | {option.help} |'


if __name__ == '__main__':
    print(markdown(), end='')
