"""Train a StyleGAN2-family GAN (skip, resnet or squeeze generator): parse options, resolve the config, launch."""

import json
import os

import click
import torch

import dnnlib
from torch_utils import custom_ops
from torch_utils.ops import paths as op_paths
from training.dataset import DatasetError
from training.networks.generator import SYNTHESIS_BLOCKS
from training.cli import config as run_config
from training.cli import launch as run_launch
from training.run import run_dir as run_dirs
from training.run import snapshot as run_snapshot

#----------------------------------------------------------------------------

# stylegan2-ada-pytorch's switches take a value (--mirror=1); a bare --mirror works too.
BOOL = dict(type=bool, is_flag=False, flag_value=True, default=None, metavar='BOOL')


class RegistryChoice(click.Choice):
    """A choice among a registry's names, read when a value is checked: a block registered after this module was
    imported (SYNTHESIS_BLOCKS, one class and one line) is a valid --g-arch too."""

    def __init__(self, registry):
        self.registry = registry
        super().__init__(list(registry))

    @property
    def choices(self):
        return tuple(self.registry)

    @choices.setter
    def choices(self, _value):
        pass  # click.Choice sets it at construction; the registry stays the one list.


def _print_config(config):
    print(json.dumps(config, indent=2))


def _check_lpips(config):
    """GLeaD needs the LPIPS weights: found locally or downloadable now, not at the first step."""
    if config.reg_type != 'glead':
        return
    from metrics import detectors, lpips  # pylint: disable=import-outside-toplevel
    try:
        lpips.check_lpips_readable(detector_dir=config.detector_dir)
    except detectors.DetectorUnavailableError as exc:
        raise click.ClickException(f'--reg-type=glead: {exc}') from None


def _check_detectors(config):
    """The detector files that --metrics needs are found locally or downloadable now, not at the first evaluation."""
    from metrics import detectors, metric_main  # pylint: disable=import-outside-toplevel
    needed = {detector.file_name: detector for metric in config.metrics for detector in metric_main.required_detectors(metric)}
    try:
        detectors.check_detectors(needed, detector_dir=config.detector_dir)
    except detectors.DetectorUnavailableError as exc:
        raise click.ClickException(f'--metrics={",".join(config.metrics)}: {exc}; or train without metrics: '
                                   f'--metrics=none') from None


def _check_output_room(config):
    """--outdir has room for one snapshot (estimated from the parameter count) before anything is trained."""
    needed = run_snapshot.estimated_snapshot_bytes(config.G_kwargs, config.D_kwargs,
                                                   config.training_set_kwargs.resolution)
    problem = run_snapshot.output_room_problem(config.outdir, needed)
    if problem is not None:
        raise click.ClickException(f'--outdir={config.outdir}: {problem}; free some space or choose another --outdir')


def _check_ops(config):
    """SQUEEZEGAN_OPS names a mode, and asks for CUDA kernels only on a CUDA run."""
    try:
        op_paths.check_mode_fits(config.device)
    except (custom_ops.OpsModeError, custom_ops.KernelUnavailableError) as exc:
        raise click.ClickException(str(exc)) from None


def _check_training_data(training_set_kwargs):
    """Every image of --data opens and has the dataset's size and channels (headers only), before anything starts."""
    dataset = dnnlib.util.construct_class_by_name(**training_set_kwargs)
    try:
        if hasattr(dataset, 'check_images'):
            dataset.check_images()
    except DatasetError as exc:
        raise click.ClickException(f'--data: {exc}') from None
    finally:
        dataset.close()


@click.command(context_settings=dict(max_content_width=120))
# General.
@click.option('--outdir',     help='Where to make the run directory', required=True, metavar='DIR')
@click.option('--data',       help='Training data (folder or zip from dataset_tool.py)', required=True, metavar='PATH')
@click.option('--gpus',       help='Number of GPUs (processes) [default: 1; WORLD_SIZE under torchrun]', type=click.IntRange(min=1))
@click.option('--device',     help='Device [default: cuda when available, else cpu]', type=click.Choice(['cuda', 'cpu']))
@click.option('--snap',       help='Snapshot interval in ticks [default: 50]', type=click.IntRange(min=1))
@click.option('--keep-snapshots', help='Keep only the newest N snapshot pairs of the run [default: all]',
              type=click.IntRange(min=1))
@click.option('--tick',       help='Progress interval in kimg, fractions allowed [default: 4]', type=float)
@click.option('--metrics',    help='Comma-separated metrics or "none" [default: fid50k_full]', metavar='LIST')
@click.option('--seed',       help='Random seed [default: 0]', type=int)
@click.option('--dry-run',    help='Print the resolved configuration and exit', is_flag=True)
@click.option('--grid',       help='Snapshot grid as COLSxROWS [default: from resolution and dataset size, <= 12x8]',
              metavar='COLSxROWS')
# Dataset.
@click.option('--cond',       help='Train a conditional model on the dataset labels', **BOOL)
@click.option('--subset',     help='Train with only N images [default: all]', type=click.IntRange(min=1))
@click.option('--mirror',     help='Add x-flipped copies of the images', **BOOL)
# Base config.
@click.option('--cfg',        help='Preset name (configs/<name>.json) or JSON path [default: auto]', metavar='NAME|FILE')
@click.option('--gamma',      help='Override R1 gamma', type=click.FloatRange(min=0))
@click.option('--kimg',       help='Override the training length: the total in kimg the run trains to, counting what a '
              'resumed run already did; fractions allowed', type=float)
@click.option('--batch',      help='Override total batch size', type=click.IntRange(min=1))
@click.option('--batch-gpu',  help='Samples per process and step (smaller = gradient accumulation)', type=click.IntRange(min=1))
# Architecture.
@click.option('--g-arch',     help='Generator blocks [default: skip]', type=RegistryChoice(SYNTHESIS_BLOCKS))
@click.option('--squeeze-ratio', help='Channel squeeze ratio r of --g-arch=squeeze [default: 8]', type=float)
@click.option('--squeeze-ablation', help='Squeeze-block ablation of the paper (none, no_blend, ...)', metavar='NAME')
@click.option('--d-arch',     help='Discriminator blocks [default: from --cfg]', type=click.Choice(['orig', 'skip', 'resnet']))
@click.option('--map',        help='Mapping network depth [default: from --cfg]', type=click.IntRange(min=1))
@click.option('--cbase',      help='Channel base (channels = min(cbase / res, cmax)) [default: from --cfg]', type=click.IntRange(min=1))
@click.option('--cmax',       help='Maximum channels per layer [default: from --cfg]', type=click.IntRange(min=1))
# Augmentation.
@click.option('--aug',        help='Augmentation mode [default: ada]', type=click.Choice(['ada', 'noaug', 'fixed']))
@click.option('--p',          help='Augmentation probability for --aug=fixed', type=float)
@click.option('--target',     help='ADA target value for --aug=ada [default: 0.6]', type=float)
@click.option('--augpipe',    help='Augmentation pipeline [default: bgc]', metavar='NAME')
# Discriminator regularisers (GGDR, GLeaD).
@click.option('--reg-type',   help='D regulariser [default: none]', type=click.Choice(['none', 'ggdr', 'glead']))
@click.option('--ggdr-res',   help='GGDR: resolution of the G features D predicts [default: resolution/4, 8..64]', type=int)
@click.option('--ggdr-weight', help='GGDR: loss weight [default: 10]', type=float)
@click.option('--glead-res-d', help='GLeaD: resolution of D\'s decoder and heads [default: resolution/4, 8..64]', type=int)
@click.option('--glead-res-g', help='GLeaD: resolution G reconstructs from [default: resolution/4, 8..64]', type=int)
@click.option('--glead-fake', help='GLeaD fake term: image (LPIPS, the paper\'s rows) or feature (GGDR cosine) [default: image]',
              type=click.Choice(['image', 'feature']))
@click.option('--glead-real-in-r1', help='GLeaD: also apply the real term in the lazy R1 phase [default: 1]', **BOOL)
@click.option('--detector-dir', help='Folder with detector/LPIPS weight files (offline use) [default: cache or download]',
              metavar='DIR')
# Transfer learning and resume.
@click.option('--resume',     help='Snapshot to resume from, "latest", a URL, a model name, or "noresume"', metavar='PKL')
@click.option('--transfer',   help='Allow --resume from networks of another architecture (copies the matching tensors)', is_flag=True)
@click.option('--freezed',    help='Freeze-D: number of discriminator layers to freeze [default: 0]', type=click.IntRange(min=0))
# Performance.
@click.option('--fp32',       help='Disable mixed-precision training [default: 1 on the CPU, 0 on CUDA]', **BOOL)
@click.option('--nhwc',       help='Use NHWC memory format with FP16', **BOOL)
@click.option('--nobench',    help='Disable cuDNN benchmarking', **BOOL)
@click.option('--allow-tf32', help='Allow PyTorch to use TF32 internally', **BOOL)
@click.option('--stop-on-nonfinite', help='Stop at a NaN/inf loss, naming it (0: go on with such gradients zeroed, as '
              'stylegan2-ada-pytorch does) [default: 1]', **BOOL)
@click.option('--workers',    help='DataLoader worker processes [default: 3, fewer with fewer cores: cores/processes - 1]',
              type=click.IntRange(min=0))
# Clusters.
@click.option('--preempt-exit-code', help='Exit code after SIGTERM/SIGUSR1/SIGINT wrote a snapshot [default: 0]', type=click.IntRange(0, 255))
@click.option('--dist-timeout', help='Seconds a multi-process collective waits for a lost peer before the run stops '
              'with an error; must exceed the longest pause of rank 0 alone (a snapshot write) [default: 1800]', type=float)
def main(**options):
    """Train a GAN with the techniques of StyleGAN2-ADA, plus the image squeeze connection.

    \b
    # Squeeze generator on CIFAR-10, the paper's setting (Table I), 2 GPUs:
    python train.py --outdir=runs --data=datasets/cifar10-32x32.zip --cfg=cifar --g-arch=squeeze --mirror --gpus=2
    \b
    # Continue the newest run exactly where it stopped:
    python train.py --outdir=runs --data=datasets/cifar10-32x32.zip --cfg=cifar --g-arch=squeeze --mirror --gpus=2 --resume=latest
    \b
    # Several nodes (SLURM and the like): torchrun sets RANK/WORLD_SIZE/LOCAL_RANK, --gpus is not needed.
    torchrun --nnodes=2 --nproc-per-node=8 --rdzv-backend=c10d --rdzv-endpoint=HOST:29500 train.py --outdir=runs --data=...
    """
    dry_run = options.pop('dry_run')
    rank = run_launch.torchrun_rank(os.environ)
    if options['device'] is None and not torch.cuda.is_available():
        if rank is None or rank[0] == 0:
            click.echo('No CUDA device found: training on the CPU (pass --device=cpu to silence this notice).', err=True)
    notes = []
    try:
        config = run_config.resolve_config(options, env=os.environ, cuda_available=torch.cuda.is_available(), notes=notes,
                                            cuda_devices=torch.cuda.device_count())
    except run_config.ConfigError as exc:
        raise click.UsageError(str(exc))
    if rank is None or rank[0] == 0:
        for note in notes:
            click.echo(note, err=True)
        _check_ops(config)
        _check_training_data(config.training_set_kwargs)
        _check_lpips(config)
        _check_detectors(config)
        _check_output_room(config)

    if dry_run:
        config.run_dir = os.path.join(config.outdir, f'{run_dirs.next_run_id(config.outdir):05d}-{config.run_desc}')
        _print_config(config)
        try:  # What the first step would run, kernels built and checked as a rank would.
            click.echo(op_paths.describe(torch.device(config.device, 0) if config.device == 'cuda' else 'cpu'), err=True)
        except custom_ops.KernelUnavailableError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f'Dry run: would train in {config.run_dir}; exiting.', err=True)
        return

    try:
        run_launch.start(config)
    except (*run_launch.USER_ERRORS, run_launch.UserErrorInRank, run_launch.RankFailure) as exc:
        raise click.ClickException(str(exc))


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
