"""Evaluate quality metrics (FID, KID, precision/recall, IS, PPL) of a saved network snapshot."""

import json
import os
import tempfile

import click
import torch

import dnnlib
from metrics import metric_main
from metrics import metric_utils
from metrics.detectors import DETECTOR_DIR_ENV, DetectorUnavailableError
from training import export

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
    recorded = source != '--data'
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


def evaluate(rank, args):
    """Compute and report every metric on one rank; rank 0 prints and writes the results."""
    if args.num_gpus > 1:
        backend = 'gloo' if os.name == 'nt' else 'nccl'
        torch.distributed.init_process_group(backend=backend, init_method=f'file://{args.init_file}',
                                             rank=rank, world_size=args.num_gpus)
        device = torch.device('cuda', rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device(args.device)
    for metric in args.metrics:
        progress = None
        if rank == 0:
            progress = metric_utils.ProgressMonitor(verbose=args.verbose, show=not args.quiet, prefix=f'{metric}: ')
        result = metric_main.calc_metric(metric, G=args.G, dataset_kwargs=args.dataset_kwargs, num_gpus=args.num_gpus,
                                         rank=rank, device=device, detector_dir=args.detector_dir, progress=progress)
        if rank == 0:
            metric_main.report_metric(result, run_dir=args.run_dir, snapshot_pkl=args.network_path)


def resolve_device(device, gpus):
    if gpus < 1:
        raise click.BadParameter(f'{gpus}; accepted: 1 or more', param_hint='--gpus')
    if gpus > 1:
        available = torch.cuda.device_count()
        if available < gpus:
            raise click.BadParameter(f'{gpus} GPUs requested but {available} CUDA devices are visible', param_hint='--gpus')
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


@click.command()
@click.option('--network', 'network_path', help='Network snapshot (.pkl), official pickle or weights-only file; path or URL', required=True, metavar='PATH')
@click.option('--metrics',      help='Comma-separated metric names', default='fid50k_full', show_default=True, metavar='LIST')
@click.option('--data',         help='Dataset (folder or zip) [default: from the run directory]', metavar='PATH')
@click.option('--mirror',       help='Mirror the dataset horizontally [default: as in training]', type=bool, metavar='BOOL')
@click.option('--gpus',         help='Number of GPUs to split the work over', type=int, default=1, show_default=True, metavar='INT')
@click.option('--device',       help='Device with --gpus=1 [default: cuda when available, else cpu]', metavar='DEVICE')
@click.option('--detector-dir', help=f'Folder holding inception-2015-12-05.pt and vgg16.pt (no download) [default: ${DETECTOR_DIR_ENV}]', metavar='DIR')
@click.option('--verbose',      help='Also report detector downloads', is_flag=True)
@click.option('--quiet',        help='No progress lines on stderr', is_flag=True)
def main(network_path, metrics, data, mirror, gpus, device, detector_dir, verbose, quiet):
    """Compute metrics of a network snapshot; print one JSON line per metric.

    For a snapshot inside a training run directory, each result is also appended to
    metric-<name>.jsonl there. Progress (images of the real and generated sets, with the expected
    total) goes to stderr: one updating line on a terminal, a line per tenth of the work or per 30 s otherwise.

    \b
    python calc_metrics.py --metrics=fid50k_full,pr50k3_full --network=runs/00000-digits/network-snapshot-000100.pkl
    python calc_metrics.py --metrics=fid3k_full --network=model.pt --data=digits.zip --detector-dir=~/detectors
    """
    metric_names = parse_metric_list(metrics)
    device = resolve_device(device, gpus)
    if detector_dir is not None:
        detector_dir = os.path.expanduser(detector_dir)
        if not os.path.isdir(detector_dir):
            raise click.BadParameter(f'{detector_dir} is not a folder', param_hint='--detector-dir')
    G, network_dataset_kwargs = load_generator(network_path)
    run_dir = run_dir_of(network_path)
    dataset_kwargs = {}
    if data is not None or needs_dataset(metric_names, G):
        dataset_kwargs = resolve_dataset_kwargs(data, mirror, G, run_dir, network_dataset_kwargs, network_path)

    args = dnnlib.EasyDict(G=G, metrics=metric_names, dataset_kwargs=dataset_kwargs, num_gpus=gpus, device=device,
                           detector_dir=detector_dir, verbose=verbose, quiet=quiet, run_dir=run_dir, network_path=network_path)
    try:
        if gpus == 1:
            evaluate(0, args)
        else:
            with tempfile.TemporaryDirectory() as temp_dir:
                args.init_file = os.path.abspath(os.path.join(temp_dir, '.torch_distributed_init'))
                torch.multiprocessing.spawn(fn=evaluate, args=(args,), nprocs=gpus)
    except DetectorUnavailableError as error:
        raise click.ClickException(str(error)) from error
    except dnnlib.util.WriteError as error:  # metric-<name>.jsonl on a full disk or read-only; earlier lines intact.
        raise click.ClickException(str(error)) from None
    except ValueError as error:  # Metrics raise ValueError for inputs they cannot use (too few samples, ...).
        raise click.ClickException(str(error).splitlines()[0]) from error


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
