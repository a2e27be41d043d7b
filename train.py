"""Train a StyleGAN2-family GAN (skip, resnet or squeeze generator): parse options, resolve the config, launch."""

import json
import os

import click
import torch

import dnnlib
from torch_utils import custom_ops
from torch_utils.ops import paths as op_paths
from training.dataset import DatasetError
from training.cli import config as run_config
from training.cli import launch as run_launch
from training.cli import options as run_options
from training.cli import run_dir as run_dirs
from training.run import snapshot as run_snapshot

#----------------------------------------------------------------------------

def _print_config(config):
    print(json.dumps(config, indent=2))


def _check_lpips(config):
    """GLeaD needs the LPIPS weights: found locally or downloadable now, not at the first step."""
    if config.reg_type != 'glead':
        return
    from metrics import detectors, lpips  # pylint: disable=import-outside-toplevel  # Only for --reg-type=glead.
    try:
        lpips.check_lpips_readable(detector_dir=config.detector_dir)
    except detectors.DetectorUnavailableError as exc:
        raise click.ClickException(f'--reg-type=glead: {exc}') from None


def _check_detectors(config, dry_run=False):
    """The detector files that --metrics needs are found locally or downloadable now, not at the first evaluation.
    A dry run (perhaps on a login node without internet) only warns."""
    if not config.metrics:
        return
    from metrics import detectors, metric_main  # pylint: disable=import-outside-toplevel  # Heavy (scipy): only with --metrics.
    needed = {detector.file_name: detector for metric in config.metrics for detector in metric_main.required_detectors(metric)}
    try:
        detectors.check_detectors(needed, detector_dir=config.detector_dir)
    except detectors.DetectorUnavailableError as exc:
        if dry_run:
            click.echo(f'Warning: --metrics={",".join(config.metrics)} will lack a detector: {exc}', err=True)
            return
        raise click.ClickException(f'--metrics={",".join(config.metrics)}: {exc}; or train without metrics: '
                                   f'--metrics=none') from None


def _check_output_room(config):
    """--outdir has room for one snapshot (estimated from the parameter count) before anything is trained."""
    # One label dimension stands in for the dataset's: conditional networks need one to be built, and the width of
    # the label embedding changes the estimate by a few thousand parameters.
    needed = run_snapshot.estimated_snapshot_bytes(config.G_kwargs, config.D_kwargs,
                                                   config.training_set_kwargs.resolution,
                                                   c_dim=int(bool(config.training_set_kwargs.use_labels)))
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
@run_options.click_options  # Every flag, its type, range, default and help: training/cli/options.py.
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
    options = run_options.given_options(click.get_current_context(), options)
    dry_run = options.pop('dry_run', False)
    rank = run_launch.torchrun_rank(os.environ)
    if options.get('device') is None and not torch.cuda.is_available():
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
        _check_detectors(config, dry_run=dry_run)
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
        run_launch.start(config, notes=notes)
    except (*run_launch.USER_ERRORS, run_launch.UserErrorInRank, run_launch.RankFailure) as exc:
        raise click.ClickException(str(exc))


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
