"""Resolve a training preset (configs/*.json), command-line overrides and dataset facts into one validated config."""

# train.py collects the command-line options into a plain dict and calls `resolve_config`; the result is
# the EasyDict that training_options.json records and training_loop.training_loop(**config) consumes.
# Every problem a user can cause raises ConfigError with one line naming the flag, the value and what
# is accepted. Preset values follow stylegan2-ada-pytorch's train.py and the squeeze paper's Table I.

import functools
import math
import os

import dnnlib
from training import augment
from training.cli import options as option_table
from training.cli import reg_config
from training.cli import resume_source
from training.cli.presets import (PRESET_DIR, PRESET_RESOLUTIONS, ConfigError,  # noqa: F401
                                  list_presets, load_preset, resolve_auto)
from training.networks.layers import channels_per_resolution
from training.run import report
from training.run import resume as run_resume

#----------------------------------------------------------------------------

# Command-line defaults from the option table; None = "take it from the preset", "worked out" or "not given".
DEFAULTS = option_table.defaults()

GRID_MAX = 64  # Columns or rows of --grid.


#----------------------------------------------------------------------------
# Dataset facts.

def inspect_dataset(training_set_kwargs):
    """EasyDict(name, resolution, init_res, image_shape, num_channels, has_labels, num_images) of the training set,
    or ConfigError (init_res: the networks' first block for non-square images, else None)."""
    if not training_set_kwargs.path or not os.path.exists(training_set_kwargs.path):
        raise ConfigError(f'--data={training_set_kwargs.path}: not found; accepted: a folder or .zip written by dataset_tool.py')
    try:
        dataset = dnnlib.util.construct_class_by_name(**training_set_kwargs)
    except (OSError, ValueError) as exc:
        raise ConfigError(f'--data: {str(exc).splitlines()[0]}') from None
    try:
        labels_available = bool(getattr(dataset, 'labels_available', dataset.has_labels))  # Reads dataset.json.
        return dnnlib.EasyDict(name=dataset.name, resolution=dataset.resolution, init_res=dataset.init_res,
                               image_shape=list(dataset.image_shape), num_channels=dataset.num_channels,
                               has_labels=dataset.has_labels or labels_available, num_images=len(dataset))
    except (OSError, ValueError) as exc:
        raise ConfigError(f'--data: {str(exc).splitlines()[0]}') from None
    finally:
        dataset.close()

#----------------------------------------------------------------------------
# Validation helpers.

def _num_processes(opts, env):
    """World size (processes, one per GPU or gloo CPU process): WORLD_SIZE under torchrun, else --gpus (default 1)."""
    if 'WORLD_SIZE' in env:
        world = int(env['WORLD_SIZE'])
        if opts.gpus is not None and opts.gpus != world:
            raise ConfigError(f'--gpus={opts.gpus} disagrees with WORLD_SIZE={world} set by torchrun; leave --gpus out under torchrun')
        return world
    gpus = 1 if opts.gpus is None else opts.gpus
    if gpus < 1 or gpus & (gpus - 1):
        raise ConfigError(f'--gpus={gpus}: must be a power of two (1, 2, 4, 8, ...)')
    return gpus


def _resolve_device(device, cuda_available):
    if device is None:
        return 'cuda' if cuda_available else 'cpu'
    if device == 'cuda' and not cuda_available:
        raise ConfigError('--device=cuda: no CUDA device is available to torch; use --device=cpu')
    return device


def _check_gpus_have_devices(opts, env, device, cuda_devices=None):
    """--gpus=N on a machine without CUDA is a mistake unless --device=cpu asks for N CPU processes; on CUDA,
    N must not exceed the visible devices (cuda_devices, when known)."""
    if 'WORLD_SIZE' in env or opts.gpus is None or opts.gpus == 1:
        return
    if device == 'cuda':
        if cuda_devices is not None and opts.gpus > cuda_devices:
            raise ConfigError(f'--gpus={opts.gpus}: only {cuda_devices} CUDA device(s) are visible here '
                              f'(see CUDA_VISIBLE_DEVICES); accepted: 1 to {cuda_devices}')
        return
    if opts.device == 'cpu':
        return
    raise ConfigError(f'--gpus={opts.gpus}: no CUDA device is available; add --device=cpu to train {opts.gpus} CPU '
                      f'processes, or leave --gpus out')


def available_cores():
    """CPU cores this process may run on (its affinity mask, as PyTorch's DataLoader counts them)."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_workers(cores, num_processes):
    """DataLoader workers per process: stylegan2-ada's 3, but leaving one core per process for training.

    PyTorch warns when a loader has more workers than cores; this never asks for that, and gives 1 worker
    on 2 cores and 0 on 1 core (or when the processes already use every core).
    """
    return max(0, min(3, cores // max(num_processes, 1) - 1))


def default_threads(cores, num_processes, workers):
    """PyTorch's CPU threads per process: the cores this process may use, less one per DataLoader worker.

    More threads than free cores make every thread wait for the others (a busy core made CPU training 4x slower).
    """
    return max(1, cores // max(num_processes, 1) - workers)


def parse_grid(grid):
    """(columns, rows) of --grid=COLSxROWS, or ConfigError."""
    parts = str(grid).lower().split('x')
    if len(parts) == 2 and all(part.strip().isdigit() for part in parts):
        cols, rows = (int(part) for part in parts)
        if 1 <= cols <= GRID_MAX and 1 <= rows <= GRID_MAX:
            return cols, rows
    raise ConfigError(f'--grid={grid}: expected COLSxROWS with whole numbers from 1 to {GRID_MAX}, e.g. --grid=8x4')


def _use_fp32(opts, device):
    """--fp32 as given; when not given, on for the CPU, where the presets' fp16 layers are only emulated (slower)."""
    return bool(opts.fp32) if opts.fp32 is not None else device == 'cpu'


def _metric_list(metrics):
    names = [m.strip() for m in (metrics or '').split(',') if m.strip()]
    if names in ([], ['none']):
        return []
    from metrics import metric_main  # pylint: disable=import-outside-toplevel  # Heavy (scipy): only when metrics are asked for.
    bad = [m for m in names if not metric_main.is_valid_metric(m)]
    if bad:
        raise ConfigError(f'--metrics={bad[0]}: unknown metric; accepted: none, {", ".join(metric_main.list_valid_metrics())}')
    return names


def _augment_kwargs(opts):
    """(augment_kwargs or None, augment_p, ada_target or None) for --aug/--p/--target/--augpipe."""
    if opts.aug != 'ada' and 'target' in opts.given:
        raise ConfigError(f'--target={opts.target} only applies to --aug=ada (got --aug={opts.aug})')
    if opts.aug != 'fixed' and opts.p is not None:
        raise ConfigError(f'--p={opts.p} only applies to --aug=fixed (got --aug={opts.aug})')
    if opts.aug == 'noaug':
        if 'augpipe' in opts.given:
            raise ConfigError(f'--augpipe={opts.augpipe} cannot be used with --aug=noaug')
        return None, 0.0, None
    augment_kwargs = dnnlib.EasyDict(class_name='training.augment.AugmentPipe', **augment.augpipe_specs[opts.augpipe])
    if opts.aug == 'fixed':
        if opts.p is None:
            raise ConfigError('--aug=fixed needs --p, the augmentation probability in [0, 1]')
        if opts.p == 0:  # As stylegan2-ada-pytorch: no pipe at all (it would draw random numbers for nothing).
            return None, 0.0, None
        return augment_kwargs, float(opts.p), None
    return augment_kwargs, 0.0, float(opts.target)

#----------------------------------------------------------------------------
# The resolution, in named steps. Each fills part of the config `c` from the options `opts` (DEFAULTS
# keys) and, where it needs them, the preset values `spec` and the dataset facts.

def with_defaults(options):
    """`options` (None = not given) over DEFAULTS, each given value checked against its option; `given` names them."""
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f'unknown option(s): {", ".join(sorted(unknown))}')
    given = {name: value for name, value in options.items()
             if value is not None and not (value is False and option_table.BY_NAME[name].accepted.kind == 'switch')}
    for name, value in given.items():
        option_table.check_value(name, value, option_table.BY_NAME[name].flag_name, ConfigError)
    opts = dnnlib.EasyDict(DEFAULTS, **given)
    opts.given = frozenset(given)
    return opts


def parse_options(options):
    """The command-line `options` over DEFAULTS (None = not given), checked, with the required ones present."""
    opts = with_defaults(options)
    if not opts.outdir:
        raise ConfigError('--outdir is required: the folder that receives the run directory')
    problem = dnnlib.util.output_dir_problem(opts.outdir)
    if problem is not None:
        raise ConfigError(f'--outdir={opts.outdir}: {problem}; give a folder for the run directories '
                          f'(it is created if missing)')
    if not opts.data:
        raise ConfigError('--data is required: a folder or .zip written by dataset_tool.py')
    return opts


def resolve_general(c, opts, env, cuda_available, cuda_devices=None):
    """Processes, device, seed, metrics, tick and snapshot intervals, and the plain range checks."""
    c.num_processes = _num_processes(opts, env)
    c.device = _resolve_device(opts.device, cuda_available)
    _check_gpus_have_devices(opts, env, c.device, cuda_devices)
    opts.fp32 = _use_fp32(opts, c.device)
    opts.workers = default_workers(available_cores(), c.num_processes) if opts.workers is None else opts.workers
    c.num_threads = opts.threads or default_threads(available_cores(), c.num_processes, opts.workers)
    c.random_seed = int(opts.seed)
    c.metrics = _metric_list(opts.metrics)
    c.detector_dir = opts.detector_dir  # Metric detectors and LPIPS weights; None = $SQUEEZEGAN_DETECTOR_DIR, cache, download.
    c.network_snapshot_ticks = c.image_snapshot_ticks = int(opts.snap)
    c.keep_snapshots = opts.keep_snapshots  # None = keep every snapshot.
    c.allow_transfer = bool(opts.transfer)  # --resume from other networks copies what matches.
    c.kimg_per_tick = float(opts.tick)
    c.preempt_exit_code = int(opts.preempt_exit_code)
    c.dist_timeout = float(opts.dist_timeout)  # Seconds.
    c.cudnn_benchmark = not opts.nobench
    c.allow_tf32 = bool(opts.allow_tf32)
    c.outdir = opts.outdir


def resolve_dataset(c, opts):
    """training_set_kwargs and data_loader_kwargs; returns the dataset facts (inspect_dataset)."""
    c.training_set_kwargs = dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=opts.data,
                                            use_labels=bool(opts.cond), max_size=opts.subset, xflip=bool(opts.mirror),
                                            random_seed=c.random_seed)
    if opts.cond:
        facts = inspect_dataset(dnnlib.EasyDict(c.training_set_kwargs, use_labels=False))
        if not facts.has_labels:
            raise ConfigError(f'--cond: dataset {opts.data} has no labels (no dataset.json labels); train without --cond')
    facts = inspect_dataset(c.training_set_kwargs)
    c.training_set_kwargs.resolution = facts.resolution
    c.data_loader_kwargs = dnnlib.EasyDict(pin_memory=(c.device == 'cuda'), num_workers=int(opts.workers),
                                           prefetch_factor=(2 if opts.workers > 0 else None))
    c.grid_size = parse_grid(opts.grid) if opts.grid is not None else report.grid_shape(facts.image_shape, facts.num_images)
    return facts


def resolve_preset(opts, resolution, num_processes):
    """(preset name, values): the preset with its "auto" values filled in, then the command-line overrides."""
    name, spec = load_preset(opts.cfg)
    spec = resolve_auto(spec, resolution, num_processes)
    for key in option_table.PRESET_FLAGS:  # A flag overrides the preset's value (checked by the same rule).
        if opts.get(key) is not None:
            spec[key] = opts[key]
    if opts.batch is not None:
        spec.ref_gpus = num_processes
    spec.channel_base = int(spec.fmaps * 32768) if opts.cbase is None else opts.cbase
    spec.channel_max = spec.cmax
    return name, spec


def resolve_batch(c, opts, spec):
    """Total batch, its split over processes (batch_gpu per process and accumulation round), and checks."""
    c.batch_size = int(spec.batch)
    if c.batch_size % c.num_processes:
        raise ConfigError(f'--batch={c.batch_size} must be a multiple of the number of GPUs/processes ({c.num_processes})')
    per_process = c.batch_size // c.num_processes
    default_batch_gpu = max(c.batch_size // int(spec.ref_gpus), 1) if opts.batch is None else per_process
    c.batch_gpu = int(opts.batch_gpu or min(default_batch_gpu, per_process))
    if c.batch_gpu < 1 or per_process % c.batch_gpu:
        raise ConfigError(f'--batch-gpu={c.batch_gpu} must divide the per-process batch {per_process} '
                          f'(--batch {c.batch_size} / {c.num_processes} GPUs)')
    mbstd_group = int(spec.mbstd_group)
    if c.batch_gpu % min(mbstd_group, c.batch_gpu):
        raise ConfigError(f'--batch-gpu={c.batch_gpu} must be a multiple of the minibatch-stddev group size '
                          f'{mbstd_group} of --cfg={opts.cfg}')


def _synthesis_kwargs(opts, spec):
    """The generator's synthesis_kwargs: channels, fp16, clamp, block architecture and its own arguments."""
    if opts.g_arch != 'squeeze' and {'squeeze_ratio', 'squeeze_ablation'} & opts.given:
        flag = '--squeeze-ratio' if 'squeeze_ratio' in opts.given else '--squeeze-ablation'
        raise ConfigError(f'{flag} only applies to --g-arch=squeeze (got --g-arch={opts.g_arch})')
    fp16_res, conv_clamp = (0, None) if opts.fp32 else (spec.num_fp16_res, spec.conv_clamp)
    synthesis_kwargs = dnnlib.EasyDict(channel_base=spec.channel_base, channel_max=spec.channel_max,
                                       num_fp16_res=fp16_res, conv_clamp=conv_clamp, architecture=opts.g_arch)
    if opts.g_arch == 'squeeze':
        synthesis_kwargs.squeeze_ratio = opts.squeeze_ratio
        synthesis_kwargs.squeeze_ablation = opts.squeeze_ablation
    if opts.nhwc:
        synthesis_kwargs.fp16_channels_last = True
    return synthesis_kwargs


def squeeze_block_channels(resolution, channel_base, channel_max):
    """Output channels of every block that squeezes: 8x8 up to `resolution` (the 4x4 block is StyleGAN2's)."""
    resolutions = [2 ** i for i in range(3, int(math.log2(resolution)) + 1)]
    return sorted(set(channels_per_resolution(resolutions, channel_base, channel_max).values()))


def check_squeeze_ratio(ratio, resolution, channel_base, channel_max):
    """The squeezed features f_s have c / r channels (paper Sec. III-B): r must be a whole number dividing
    every squeeze block's c. The block itself would round c / r up, silently building another network than
    the ratio names (and 1-channel features for r > c)."""
    channels = squeeze_block_channels(resolution, channel_base, channel_max)
    if not channels:
        return
    common = functools.reduce(math.gcd, channels)
    accepted = [r for r in range(1, common + 1) if common % r == 0]
    whole = isinstance(ratio, (int, float)) and math.isfinite(ratio) and float(ratio).is_integer()
    if not (whole and int(ratio) in accepted):
        raise ConfigError(f'--squeeze-ratio={ratio:g}: must divide every squeeze block\'s channels '
                          f'({", ".join(map(str, channels))}) at {resolution}x{resolution} with --cbase={channel_base} '
                          f'--cmax={channel_max}; accepted: {", ".join(map(str, accepted))}')


def network_kwargs(opts, spec):
    """(G_kwargs, D_kwargs) as training_options.json records them; the dataset adds c_dim, resolution, channels."""
    G_kwargs = dnnlib.EasyDict(class_name='training.networks.Generator', z_dim=512, w_dim=512,
                               mapping_kwargs=dnnlib.EasyDict(num_layers=int(spec.map)),
                               synthesis_kwargs=_synthesis_kwargs(opts, spec))
    fp16_res, conv_clamp = (0, None) if opts.fp32 else (spec.num_fp16_res, spec.conv_clamp)
    D_kwargs = dnnlib.EasyDict(class_name='training.networks.Discriminator', architecture=spec.d_arch,
                               channel_base=spec.channel_base, channel_max=spec.channel_max, num_fp16_res=fp16_res,
                               conv_clamp=conv_clamp, block_kwargs=dnnlib.EasyDict(), mapping_kwargs=dnnlib.EasyDict(),
                               epilogue_kwargs=dnnlib.EasyDict(mbstd_group_size=int(spec.mbstd_group)))
    if opts.nhwc:
        D_kwargs.block_kwargs.fp16_channels_last = True
    if opts.freezed:
        D_kwargs.block_kwargs.freeze_layers = int(opts.freezed)
    return G_kwargs, D_kwargs


def preset_network_kwargs(cfg, resolution, **options):
    """(G_kwargs, D_kwargs) of preset `cfg` at `resolution`, resolved as training does, without a dataset.

    options: g_arch, squeeze_ratio, squeeze_ablation, d_arch, ... as train.py names them (DEFAULTS keys).
    """
    opts = with_defaults(dict(options, cfg=cfg))
    _name, spec = resolve_preset(opts, resolution, num_processes=1)
    G_kwargs, D_kwargs = network_kwargs(opts, spec)
    check_network(G_kwargs, resolution)
    return G_kwargs, D_kwargs


def check_network(G_kwargs, resolution):
    """Checks that need the resolution as well as the options: every layer has channels, the squeeze ratio fits the
    block widths."""
    synthesis = G_kwargs.synthesis_kwargs
    if synthesis.channel_base // resolution < 1 or synthesis.channel_max < 1:
        raise ConfigError(f'--cbase={synthesis.channel_base} --cmax={synthesis.channel_max}: the {resolution}x{resolution} '
                          f'layers would have no channels (min(cbase / resolution, cmax)); accepted: --cbase >= '
                          f'{resolution} and --cmax >= 1')
    if synthesis.architecture == 'squeeze':
        check_squeeze_ratio(synthesis.squeeze_ratio, resolution, synthesis.channel_base, synthesis.channel_max)


def resolve_optimisation(c, opts, spec):
    """Optimizers, lazy-regularisation intervals, loss, schedules, training length and EMA."""
    c.G_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=float(spec.lrate), betas=[float(b) for b in spec.betas],
                                     eps=float(spec.eps))
    c.D_opt_kwargs = dnnlib.EasyDict(c.G_opt_kwargs)
    c.G_reg_interval = spec.g_reg_interval
    c.D_reg_interval = spec.d_reg_interval if opts.reg_every is None else (None if opts.reg_every == 1 else opts.reg_every)
    c.loss_kwargs = dnnlib.EasyDict(class_name=option_table.LOSS_CLASSES[spec.loss], r1_gamma=float(spec.gamma),
                                    style_mixing_prob=float(spec.style_mixing_prob), pl_weight=float(spec.pl_weight))
    c.schedules = None if not spec.schedules else {name: dict(values) for name, values in spec.schedules.items()}
    c.total_kimg = float(spec.kimg)
    c.ema_kimg = float(spec.ema_kimg)
    c.ema_rampup = spec.ema_rampup
    scheduled = set(c.schedules or ())
    if 'gamma' in scheduled and opts.gamma is not None:
        raise ConfigError(f'--gamma={opts.gamma:g}: --cfg={opts.cfg} schedules gamma ({_schedule_text(c.schedules["gamma"])}); '
                          f'drop --gamma, or use a preset without a gamma schedule')
    if spec.loss == 'rpgan' and opts.reg_type != 'none':
        raise ConfigError(f'--reg-type={opts.reg_type} is defined for the non-saturating loss; it cannot be used with '
                          f'--loss=rpgan')


def resolve_transition(c, opts, spec):
    """Transitional conditioning (training/transition.py): G's mapping and D take the transition buffer, three loss
    terms weigh D's conditional logit, and the loop sets the buffers from c.cond_transition = [start, end] kimg."""
    start, end = opts.t_start_kimg, opts.t_end_kimg
    if start is None and end is None:
        return  # No key at all: the configs of runs written before transitional conditioning stay the same.
    if start is None or end is None:
        given, missing = ('--t-start-kimg', '--t-end-kimg') if end is None else ('--t-end-kimg', '--t-start-kimg')
        raise ConfigError(f'{given}={start if end is None else end:g}: transitional conditioning needs {missing} too')
    if end < start:
        raise ConfigError(f'--t-end-kimg={end:g}: must be >= --t-start-kimg={start:g}')
    if not opts.cond:
        raise ConfigError(f'--t-start-kimg={start:g}: transitional conditioning blends labels in; it needs --cond=1')
    if spec.loss != 'ns':
        raise ConfigError(f'--t-start-kimg={start:g}: transitional conditioning is defined for the non-saturating '
                          f'loss; it cannot be used with --loss={spec.loss}')
    c.cond_transition = [float(start), float(end)]
    c.G_kwargs.mapping_kwargs.cond_transition = True
    c.D_kwargs.cond_transition = True
    c.loss_kwargs.extra_terms = list(c.loss_kwargs.get('extra_terms', [])) + [
        dnnlib.EasyDict(class_name='training.transition.CondLogitLoss', side=side) for side in ('G', 'fake', 'real')]


def _schedule_text(schedule):
    return f'{schedule["start"]:g} to {schedule["end"]:g} over {schedule["kimg"]:g} kimg'


def resolve_augmentation(c, opts):
    """ADA pipe, its initial p and target, and the ADA controller's speed and interval; a preset's aug_p schedule
    makes p follow it (mode fixed) unless --aug says otherwise."""
    p_schedule = (c.schedules or {}).get('aug_p')
    if p_schedule is not None and (opts.aug != 'ada' or 'aug' in opts.given):
        if opts.aug != 'noaug':
            raise ConfigError(f'--aug={opts.aug}: --cfg={opts.cfg} schedules the augmentation p '
                              f'({_schedule_text(p_schedule)}); drop --aug (p follows the schedule) or pass --aug=noaug')
        c.schedules = {name: value for name, value in c.schedules.items() if name != 'aug_p'} or None
        p_schedule = None
    if p_schedule is not None:  # p follows the schedule from its start value: a fixed-p pipe.
        for name in ('p', 'target'):
            if name in opts.given:
                raise ConfigError(f'--{name}={opts[name]:g}: --cfg={opts.cfg} schedules the augmentation p; drop --{name}')
        c.augment_kwargs = dnnlib.EasyDict(class_name='training.augment.AugmentPipe', **augment.augpipe_specs[opts.augpipe])
        c.augment_p, c.ada_target = float(p_schedule['start']), None
    else:
        c.augment_kwargs, c.augment_p, c.ada_target = _augment_kwargs(opts)
    c.ada_kimg = 500
    c.ada_interval = 4


def resolve_resume_source(c, opts):
    """resume_pkl and resume_state; transfer learning (no resume state) ramps ADA faster and EMA not at all."""
    try:
        c.resume_pkl, c.resume_state, resume_desc = resume_source.resolve_resume(opts.resume, opts.outdir)
    except run_resume.ResumeError as exc:
        raise ConfigError(str(exc)) from None
    if resume_desc is not None and c.resume_state is None:  # As stylegan2-ada-pytorch does for transfer learning.
        c.ada_kimg = 100
        c.ema_rampup = None
    return resume_desc


def run_description(opts, c, spec, dataset_name, resume_desc):
    """<dataset>-<cfg><processes>-<g-arch>, then what differs from the defaults, joined by '-'."""
    synthesis = c.G_kwargs.synthesis_kwargs
    desc = [dataset_name, f'{c.cfg}{c.num_processes}', opts.g_arch]
    if opts.g_arch == 'squeeze' and 'squeeze_ratio' in opts.given:
        desc.append(f'r{synthesis.squeeze_ratio:g}')
    if opts.g_arch == 'squeeze' and synthesis.squeeze_ablation != 'none':
        desc.append(synthesis.squeeze_ablation.replace('_', ''))
    desc += ['cond'] * bool(opts.cond)
    if c.get('cond_transition') is not None:
        desc.append('trans{:g}-{:g}'.format(*c.cond_transition))
    desc += [f'subset{opts.subset}'] * bool(opts.subset) + ['mirror'] * bool(opts.mirror)
    desc += [f'd{spec.d_arch}'] * (opts.d_arch is not None) + [f'map{spec.map}'] * (opts.map is not None)
    desc += [f'cbase{spec.channel_base}'] * (opts.cbase is not None) + [f'cmax{spec.channel_max}'] * (opts.cmax is not None)
    desc += [f'gamma{spec.gamma:g}'] * (opts.gamma is not None) + [f'pl{spec.pl_weight:g}'] * (opts.pl_weight is not None)
    desc += [f'kimg{spec.kimg:g}'] * (opts.kimg is not None)
    desc += [f'batch{c.batch_size}'] * (opts.batch is not None)
    desc += ['rpgan'] * (spec.loss == 'rpgan') + [f'reg{opts.reg_every}'] * (opts.reg_every is not None)
    if opts.aug == 'noaug':
        desc.append('noaug')
    elif 'aug_p' in (c.schedules or {}):
        desc.append('pschedule')
    elif opts.aug == 'fixed':
        desc.append(f'fixed-p{c.augment_p:g}')
    else:
        desc.append('ada' if 'target' not in opts.given else f'ada-target{c.ada_target:g}')
    desc += [opts.augpipe] * ('augpipe' in opts.given and opts.aug != 'noaug')
    desc += [opts.reg_type] * (opts.reg_type not in (None, 'none'))
    desc += [f'resume{resume_desc}'] * (resume_desc is not None)
    desc += [f'freezed{opts.freezed}'] * bool(opts.freezed) + ['fp32'] * bool('fp32' in opts.given and opts.fp32)
    desc += ['nhwc'] * opts.nhwc
    desc += ['nobench'] * opts.nobench + ['tf32'] * opts.allow_tf32
    return '-'.join(desc)


def _notes(opts, spec, cfg_name, resolution):
    """One-line notices about choices the user did not spell out: fp16 off on the CPU, a preset of another resolution."""
    notes = []
    if 'fp32' not in opts.given and opts.fp32 and spec.num_fp16_res:
        notes.append(f'fp16 layers off on the CPU (no speed-up there, only emulation): fp32 throughout; '
                     f'pass --fp32=0 to keep the {spec.num_fp16_res} fp16 resolutions of --cfg={cfg_name}')
    preset_res = PRESET_RESOLUTIONS.get(cfg_name)
    if preset_res is not None and preset_res != resolution:
        fitting = ['auto'] + [name for name, res in PRESET_RESOLUTIONS.items() if res == resolution]
        notes.append(f'Warning: --cfg={cfg_name} is meant for {preset_res}x{preset_res} data, this dataset is '
                     f'{resolution}x{resolution}; --cfg={" or --cfg=".join(fitting)} fits it')
    return notes


def resolve_config(options, env=None, cuda_available=False, notes=None, cuda_devices=None):
    """Validated training config (EasyDict) from command-line `options` (DEFAULTS keys; None = not given).

    env: the process environment (os.environ), consulted for torchrun's WORLD_SIZE.
    cuda_available: whether torch sees a CUDA device (decides the default --device).
    cuda_devices: how many it sees (checks --gpus), or None when unknown.
    notes: a list that receives one-line notices for the user (fp16 off on the CPU, a preset of another
    resolution, what a resume changes); None discards them.
    """
    opts = parse_options(options)
    c = dnnlib.EasyDict()
    resolve_general(c, opts, {} if env is None else env, cuda_available, cuda_devices)
    facts = resolve_dataset(c, opts)
    c.cfg, spec = resolve_preset(opts, facts.resolution, c.num_processes)
    resolve_batch(c, opts, spec)
    c.G_kwargs, c.D_kwargs = network_kwargs(opts, spec)
    if facts.init_res is not None:  # Non-square data: the first block's shape (training/networks/layers.py).
        c.G_kwargs.synthesis_kwargs.init_res = list(facts.init_res)
        c.D_kwargs.init_res = list(facts.init_res)
    check_network(c.G_kwargs, facts.resolution)
    resolve_optimisation(c, opts, spec)
    c.loss_kwargs.check_finite = bool(opts.stop_on_nonfinite)
    reg_config.resolve_regularizer(c, opts, facts.resolution, ConfigError)
    resolve_transition(c, opts, spec)
    resolve_augmentation(c, opts)
    resume_desc = resolve_resume_source(c, opts)
    c.run_desc = run_description(opts, c, spec, facts.name, resume_desc)
    if notes is not None:
        notes += _notes(opts, spec, c.cfg, facts.resolution)
        notes += [notice for notice in [resume_source.resume_notice(c)] if notice is not None]
    return c
