"""Evaluate quality metrics (FID, FD-DINOv2, KID, precision/recall, IS, PPL) of a network snapshot or an image folder."""

import json
import os

import click
import numpy as np
import torch

import dnnlib
from metrics import detectors
from metrics import frechet_inception_distance
from metrics import metric_main
from metrics import metric_utils
from metrics import reference_stats
from metrics.detectors import DETECTOR_DIR_ENV, DetectorUnavailableError
from torch_utils import misc
from training import export
from training.cli import launch

DATASET_CLASS = 'training.dataset.ImageFolderDataset'

#----------------------------------------------------------------------------
# Resolving the inputs.


def parse_metric_list(text):
    names = [name.strip() for name in text.split(',') if name.strip()]
    if not names:
        raise click.BadParameter('no metric named; accepted: ' + metric_main.describe_valid_metrics(), param_hint='--metrics')
    for name in names:
        if not metric_main.is_valid_metric(name):
            raise click.BadParameter(f'{name!r} is not a metric; accepted: {metric_main.describe_valid_metrics()}',
                                     param_hint='--metrics')
    return names


def run_dir_of(network_path):
    """The training run directory holding the snapshot (it has training_options.json), or None."""
    if dnnlib.util.is_url(network_path, allow_file_urls=True):
        return None
    folder = os.path.dirname(os.path.abspath(network_path))
    return folder if os.path.isfile(os.path.join(folder, 'training_options.json')) else None


def training_set_kwargs_of_run(run_dir):
    """(training_set_kwargs recorded in a run directory's training_options.json, that file's path), or (None, None)."""
    if run_dir is None:
        return None, None
    path = os.path.join(run_dir, 'training_options.json')
    try:
        with open(path, 'rb') as f:
            options = json.loads(f.read())
    except (OSError, ValueError) as error:
        raise click.ClickException(f'{path}: cannot read training options ({error})') from error
    kwargs = options.get('training_set_kwargs') if isinstance(options, dict) else None
    return (dnnlib.EasyDict(kwargs), path) if isinstance(kwargs, dict) else (None, None)


def recorded_dataset_kwargs(run_dir, network_kwargs, network_path):
    """(dataset kwargs, the file they were read from): the run's training options, else the network file's."""
    kwargs, source = training_set_kwargs_of_run(run_dir)
    if kwargs is None and isinstance(network_kwargs, dict) and network_kwargs:
        kwargs, source = dnnlib.EasyDict(network_kwargs), network_path
    if kwargs is None:
        raise click.UsageError(f'--data is needed: {network_path} is not in a run directory with '
                               f'training_options.json and does not name its dataset')
    return kwargs, source


def build_dataset(kwargs, source):
    """The dataset, built only from an allowed class (a file can name any callable); bad input is one line."""
    recorded = not source.startswith('--')  # Read from a run's or network file's records, not given as a flag.
    try:
        return metric_utils.construct_dataset(kwargs, source=source, key='training_set_kwargs.class_name')
    except dnnlib.util.NotAllowedError as error:
        raise click.ClickException(f'{error}; pass --data to use a dataset folder or zip instead') from None
    except TypeError as error:  # Keyword arguments the class does not take.
        raise click.ClickException(f'{source}: training_set_kwargs do not fit {kwargs.class_name} ({error}); '
                                   f'pass --data to use a dataset folder or zip instead') from None
    except (ValueError, OSError) as error:  # DatasetError is a ValueError; its message names the file.
        hint = ' (recorded by the training run; pass --data to use another path)' if recorded else ''
        raise click.ClickException(f'{error}{hint}') from error


def resolve_dataset_kwargs(data, mirror, G, run_dir, network_kwargs, network_path):
    """Dataset kwargs for the real images: --data, else the run's training options, else the network file's."""
    if data is not None:
        kwargs, source = dnnlib.EasyDict(class_name=DATASET_CLASS, path=data), '--data'
    else:
        kwargs, source = recorded_dataset_kwargs(run_dir, network_kwargs, network_path)
    kwargs.class_name = kwargs.get('class_name', DATASET_CLASS)
    kwargs.resolution = G.img_resolution
    kwargs.use_labels = G.c_dim != 0
    kwargs.max_size = None
    kwargs.xflip = bool(mirror if mirror is not None else kwargs.get('xflip', False))
    dataset = build_dataset(kwargs, source)
    if G.c_dim != 0 and dataset.label_dim != G.c_dim:
        raise click.ClickException(f'{kwargs.path} has {dataset.label_dim}-dim labels but the network takes '
                                   f'{G.c_dim}-dim labels; pass the dataset it was trained on with --data')
    return kwargs


def needs_dataset(metrics, G):
    """Unconditional PPL reads no real images; every other metric does."""
    return G.c_dim != 0 or any(not name.startswith('ppl') for name in metrics)


def load_generator(network_path):
    try:
        networks = export.load_network(network_path, device='cpu')
    except export.NetworkFileError as error:
        raise click.ClickException(str(error)) from error
    G = networks.get('G_ema') if networks.get('G_ema') is not None else networks.get('G')
    if G is None:
        raise click.ClickException(f'{network_path} holds no generator (neither G_ema nor G)')
    return G, networks.get('training_set_kwargs')

#----------------------------------------------------------------------------
# Evaluation, in this process or in one process per GPU.


def repeated(results):
    """One result from `results` of the same metric under different seeds: the mean of each value, and each value's
    mean, std and min under 'repeats' (papers report the mean or, as EDM2, the minimum of three)."""
    combined = dnnlib.EasyDict(results[0], total_time=sum(r.total_time for r in results))
    combined.total_time_str = dnnlib.util.format_time(combined.total_time)
    combined.repeats = {}
    for key in results[0].results:
        values = np.array([r.results[key] for r in results], dtype=np.float64)
        combined.repeats[key] = dict(mean=float(values.mean()), std=float(values.std()), min=float(values.min()),
                                     values=[float(v) for v in values])
    combined.results = dnnlib.EasyDict({key: stats['mean'] for key, stats in combined.repeats.items()})
    return combined


def evaluate(rank, args, init_method=None):
    """Compute and report every metric on one rank; rank 0 prints and writes the results. With args.num_gpus > 1,
    the rank first joins the others at `init_method`: NCCL with one GPU each, or gloo for --device=cpu."""
    if args.num_gpus > 1:
        on_cuda = args.device == 'cuda'
        if on_cuda:
            torch.cuda.set_device(rank)
        torch.distributed.init_process_group(backend='nccl' if on_cuda else 'gloo', init_method=init_method,
                                             rank=rank, world_size=args.num_gpus)
        device = torch.device('cuda', rank) if on_cuda else torch.device('cpu')
    else:
        device = torch.device(args.device)
    # Plain float32 in every process, as in training and in stylegan2-ada-pytorch's calc_metrics: cuDNN would
    # otherwise convolve in TF32 on Ampere and newer GPUs (10-bit mantissa), and the scores would move with it.
    # Batches keep one shape, so cuDNN may time its algorithms once and keep the fastest (as theirs does too).
    misc.set_tf32(False)
    torch.backends.cudnn.benchmark = True
    for metric in args.metrics:
        progress = None
        if rank == 0:
            progress = metric_utils.ProgressMonitor(verbose=args.verbose, show=not args.quiet, prefix=f'{metric}: ')
        results = [metric_main.calc_metric(metric, G=args.G, dataset_kwargs=args.dataset_kwargs, num_gpus=args.num_gpus,
                                           rank=rank, device=device, detector_dir=args.detector_dir, progress=progress,
                                           seed=seed, gen_dataset_kwargs=args.gen_dataset_kwargs,
                                           reference=args.reference, reference_path=args.reference_path)
                   for seed in range(args.repeats)]
        result = results[0] if args.repeats == 1 else repeated(results)
        if rank == 0:
            metric_main.report_metric(result, run_dir=args.run_dir, snapshot_pkl=args.network_path)


# What a metrics rank may stop on that its one line explains (as calc_metrics.py reports them with --gpus=1).
RANK_USER_ERRORS = (DetectorUnavailableError, dnnlib.util.WriteError, ValueError)


def metrics_rank(rank, args, temp_dir):
    """Entry point of one spawned metrics process (launch.spawn_ranks)."""
    launch.run_guarded(rank, temp_dir, lambda: evaluate(rank, args, launch.init_method(temp_dir)), RANK_USER_ERRORS,
                       interrupted='interrupted')


def _print_traceback(text):
    click.echo(text, err=True)
    return ' (traceback above)'


def evaluate_on_ranks(args):
    """evaluate() in args.num_gpus spawned processes; a rank's failure ends them all, in one line (ClickException)."""
    try:
        launch.spawn_ranks(metrics_rank, args, args.num_gpus, on_failure=lambda processes, failed, temp_dir:
                           launch.rank_failure(processes, failed, temp_dir, 'metrics process', _print_traceback))
    except launch.UserErrorInRank as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    except launch.RankFailure as error:
        raise click.ClickException(str(error)) from None


def resolve_device(device, gpus):
    if gpus < 1:
        raise click.BadParameter(f'{gpus}; accepted: 1 or more', param_hint='--gpus')
    if gpus > 1:
        if device == 'cpu':
            return 'cpu'  # N CPU processes (gloo), as train.py --gpus=N --device=cpu.
        if device not in (None, 'cuda'):
            raise click.BadParameter(f'{device!r} with --gpus={gpus}; accepted: cuda (one GPU per process) or cpu',
                                     param_hint='--device')
        available = torch.cuda.device_count()
        if available < gpus:
            raise click.BadParameter(f'{gpus} GPUs requested but {available} CUDA devices are visible; add '
                                     f'--device=cpu for {gpus} CPU processes', param_hint='--gpus')
        return 'cuda'
    if device is None:
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise click.BadParameter(f'{device!r} is not a device; accepted: cpu, cuda, cuda:N, mps', param_hint='--device') from error
    if parsed.type == 'cuda' and not torch.cuda.is_available():
        raise click.BadParameter(f'{device} requested but CUDA is not available here; use --device=cpu', param_hint='--device')
    return device

#----------------------------------------------------------------------------


# Metrics that compare distributions of images, and so can score a folder; PPL needs a network to walk through.
FOLDER_METRICS = ('fid', 'fd_dinov2', 'kid', 'pr', 'is')
REFERENCE_METRICS = ('fid', 'fd_dinov2', 'is')  # Means and covariances suffice (IS reads no real images).


def _family(metric):
    """'fid' of fid50k_full, 'fd_dinov2' of fd_dinov2_10k_full, 'ppl' of ppl2_wend, ..."""
    return next(family for family in ('fd_dinov2', 'fid', 'kid', 'pr', 'is', 'ppl') if metric.startswith(family))


def check_inputs(metric_names, network_path, gen_path, data, ref_path, repeats):
    """One line for every combination of inputs that cannot work."""
    if (network_path is None) == (gen_path is None):
        raise click.UsageError('give either --network (a snapshot to generate images with) or --gen (a folder or zip '
                               'of generated images), not both' if network_path else
                               'nothing to evaluate: give --network=PKL, --gen=FOLDER_OR_ZIP, or --data with --ref-out')
    if gen_path is not None:
        needs_network = [m for m in metric_names if _family(m) not in FOLDER_METRICS]
        if needs_network:
            raise click.UsageError(f'--metrics={needs_network[0]} needs a network to generate with; --gen scores '
                                   f'images only ({", ".join(FOLDER_METRICS)})')
        if repeats > 1:
            raise click.UsageError(f'--repeats={repeats} with --gen: a folder gives the same images every time')
        if data is None and ref_path is None and any(_family(m) != 'is' for m in metric_names):
            raise click.UsageError('--gen compares with real images: give --data=FOLDER_OR_ZIP or --ref=STATS')
    if ref_path is not None:
        if data is not None:
            raise click.UsageError('give either --data or --ref for the real images, not both')
        needs_images = [m for m in metric_names if _family(m) not in REFERENCE_METRICS]
        if needs_images:
            raise click.UsageError(f'--metrics={needs_images[0]} compares every image\'s features; --ref holds means '
                                   f'and covariances only ({", ".join(REFERENCE_METRICS)} can use it): pass --data')


def image_set_kwargs(path, flag):
    """Dataset kwargs of a folder or zip of images, checked readable now (one line naming the flag otherwise)."""
    if not os.path.exists(path):
        raise click.BadParameter(f'{path}: not found; accepted: a folder or zip of images', param_hint=flag)
    kwargs = dnnlib.EasyDict(class_name=DATASET_CLASS, path=path, use_labels=False, max_size=None, xflip=False)
    build_dataset(kwargs, flag).close()  # An empty or unreadable set is one line naming it.
    return kwargs


def write_reference(data, ref_out, device, detector_dir, quiet):
    """--ref-out: FID's and FD-DINOv2's real-set statistics of --data, saved to an .npz."""
    kwargs = image_set_kwargs(data, '--data')
    opts = metric_utils.MetricOptions(dataset_kwargs=kwargs, device=device, detector_dir=detector_dir,
                                      progress=metric_utils.ProgressMonitor(show=not quiet, prefix='reference: '))
    moments = {}
    for family, detector, detector_kwargs in (('fid', detectors.INCEPTION, frechet_inception_distance.DETECTOR_KWARGS),
                                              ('fd_dinov2', detectors.DINOV2, {})):
        stats = metric_utils.compute_feature_stats_for_dataset(opts, detector=detector, detector_kwargs=detector_kwargs,
                                                               capture_mean_cov=True)
        moments[family] = stats.get_mean_cov()
    reference_stats.save_reference(ref_out, moments, opts.report.num_real)
    click.echo(json.dumps(dict(ref_out=ref_out, data=data, num_images=opts.report.num_real,
                               detectors=dict(opts.report.detectors))))


@click.command()
@click.option('--network', 'network_path', help='Network snapshot (.pkl), official pickle or weights-only file; path or URL', metavar='PATH')
@click.option('--gen', 'gen_path', help='Generated images to score instead of a network: a folder or zip (all of them are used)', metavar='PATH')
@click.option('--metrics',      help='Comma-separated metric names', default='fid50k_full', show_default=True, metavar='LIST')
@click.option('--data',         help='Real images (folder or zip) [default: from the run directory]', metavar='PATH')
@click.option('--ref', 'ref_path', help='Real-set statistics instead of --data: an .npz from --ref-out or an EDM2 reference .pkl (FID, FD-DINOv2)', metavar='FILE')
@click.option('--ref-out',      help='Save the statistics of --data for FID and FD-DINOv2 to this .npz and exit', metavar='FILE')
@click.option('--repeats',      help='Compute each metric N times with different seeds; report the mean, std and min', type=click.IntRange(min=1), default=1, show_default=True)
@click.option('--mirror',       help='Mirror the dataset horizontally [default: as in training]', type=bool, metavar='BOOL')
@click.option('--gpus',         help='Number of processes to split the work over: one GPU each, or CPU processes with --device=cpu', type=int, default=1, show_default=True, metavar='INT')
@click.option('--device',       help='Device: cpu, cuda or cuda:N (with --gpus=N: cuda or cpu) [default: cuda when available, else cpu]', metavar='DEVICE')
@click.option('--detector-dir', help=f'Folder holding the detector files (no download) [default: ${DETECTOR_DIR_ENV}]', metavar='DIR')
@click.option('--verbose',      help='Also report detector downloads', is_flag=True)
@click.option('--quiet',        help='No progress lines on stderr', is_flag=True)
def main(network_path, gen_path, metrics, data, ref_path, ref_out, repeats, mirror, gpus, device, detector_dir, verbose,
         quiet):
    """Compute metrics of a network snapshot or a folder of generated images; print one JSON line per metric.

    For a snapshot inside a training run directory, each result is also appended to
    metric-<name>.jsonl there. Progress (images of the real and generated sets, with the expected
    total and the rate) goes to stderr: one updating line on a terminal, a line per tenth of the work or per 30 s
    otherwise. Each result names the images used and the detector files (sha256 prefix), so two results can be
    seen to be comparable.

    \b
    python calc_metrics.py --metrics=fid50k_full,pr50k3_full --network=runs/00000-digits/network-snapshot-000100.pkl
    python calc_metrics.py --metrics=fid3k_full --network=model.pt --data=digits.zip --detector-dir=~/detectors
    python calc_metrics.py --metrics=fid50k_full,fd_dinov2_50k_full --gen=samples/ --data=ffhq.zip
    python calc_metrics.py --data=ffhq.zip --ref-out=ffhq-ref.npz
    python calc_metrics.py --metrics=fd_dinov2_50k_full --network=model.pt --ref=ffhq-ref.npz --repeats=3
    """
    metric_names = parse_metric_list(metrics)
    device = resolve_device(device, gpus)
    if detector_dir is not None:
        detector_dir = os.path.expanduser(detector_dir)
        if not os.path.isdir(detector_dir):
            raise click.BadParameter(f'{detector_dir} is not a folder', param_hint='--detector-dir')
    if ref_out is not None:
        if network_path is not None or gen_path is not None or data is None:
            raise click.UsageError('--ref-out saves the statistics of --data alone: give --data, without --network or --gen')
        try:
            return write_reference(data, ref_out, device, detector_dir, quiet)
        except DetectorUnavailableError as error:
            raise click.ClickException(str(error)) from error
        except dnnlib.util.WriteError as error:
            raise click.ClickException(str(error)) from None
    check_inputs(metric_names, network_path, gen_path, data, ref_path, repeats)
    reference = None
    if ref_path is not None:
        try:
            reference = reference_stats.load_reference(ref_path)
        except reference_stats.ReferenceStatsError as error:
            raise click.ClickException(str(error)) from None

    G, run_dir, gen_dataset_kwargs, dataset_kwargs = None, None, None, {}
    if gen_path is not None:
        gen_dataset_kwargs = image_set_kwargs(gen_path, '--gen')
        if data is not None:
            dataset_kwargs = image_set_kwargs(data, '--data')
    else:
        G, network_dataset_kwargs = load_generator(network_path)
        run_dir = run_dir_of(network_path)
        if data is not None or (needs_dataset(metric_names, G) and reference is None):
            dataset_kwargs = resolve_dataset_kwargs(data, mirror, G, run_dir, network_dataset_kwargs, network_path)

    args = dnnlib.EasyDict(G=G, metrics=metric_names, dataset_kwargs=dataset_kwargs, num_gpus=gpus, device=device,
                           detector_dir=detector_dir, verbose=verbose, quiet=quiet, run_dir=run_dir, network_path=network_path,
                           gen_dataset_kwargs=gen_dataset_kwargs, reference=reference, reference_path=ref_path,
                           repeats=repeats)
    if gpus > 1:
        return evaluate_on_ranks(args)
    try:
        evaluate(0, args)
    except DetectorUnavailableError as error:
        raise click.ClickException(str(error)) from error
    except dnnlib.util.WriteError as error:  # metric-<name>.jsonl on a full disk or read-only; earlier lines intact.
        raise click.ClickException(str(error)) from None
    except ValueError as error:  # Metrics raise ValueError for inputs they cannot use (too few samples, ...).
        raise click.ClickException(str(error).splitlines()[0]) from error


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
