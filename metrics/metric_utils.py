"""Shared metric machinery: options, progress display, datasets by allowed name, and detector features of a dataset (cached) or a generator."""

import copy
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch

import dnnlib
from metrics import detectors
from metrics import reference_stats
from metrics.feature_stats import FeatureStats

#----------------------------------------------------------------------------


class MetricOptions:
    """Everything one metric evaluation needs; built by metric_main.calc_metric."""

    def __init__(self,
        G              = None,  # Generator to evaluate (not modified; metrics work on a copy).
        G_kwargs       = {},    # Extra keyword arguments for G(z, c, ...), e.g. noise_mode.
        dataset_kwargs = {},    # Real data: kwargs with a class_name from DATASET_CLASSES.
        num_gpus       = 1,     # Number of ranks taking part; >1 needs torch.distributed initialised.
        rank           = 0,     # This process's rank in [0, num_gpus).
        device         = None,  # Device to run on; None = cuda:<rank> when CUDA is available, else cpu.
        progress       = None,  # ProgressMonitor of the caller, or None for a silent one; only rank 0 prints.
        cache          = True,  # Read and write dataset feature statistics in the on-disk cache?
        detector_dir   = None,  # Folder holding detector files under their published names; None = $SQUEEZEGAN_DETECTOR_DIR or download.
        seed           = 0,     # Seed for latents and labels; ranks derive their own streams from it.
        gen_dataset_kwargs = None,  # Generated images read from a folder or zip (all of them) instead of made by G.
        reference      = None,  # {family: (mu, sigma)} of the real images (metrics/reference_stats.py), used instead.
        reference_path = None,  # Where `reference` was read, for messages.
    ):
        if not 0 <= rank < num_gpus:
            raise ValueError(f'rank={rank} is outside [0, num_gpus={num_gpus})')
        if device is None:
            device = torch.device('cuda', rank) if torch.cuda.is_available() else torch.device('cpu')
        self.G = G
        self.G_kwargs = dnnlib.EasyDict(G_kwargs)
        self.dataset_kwargs = dnnlib.EasyDict(dataset_kwargs)
        self.num_gpus = num_gpus
        self.rank = rank
        self.device = torch.device(device)
        self.progress = progress.sub() if progress is not None and rank == 0 else ProgressMonitor()
        self.cache = cache
        self.detector_dir = detector_dir
        self.seed = seed
        self.gen_dataset_kwargs = dnnlib.EasyDict(gen_dataset_kwargs) if gen_dataset_kwargs is not None else None
        self.reference = reference
        self.reference_path = reference_path
        self.report = dnnlib.EasyDict(detectors={})  # What the result line says it used: detector files, image counts.

    def get_detector(self, detector):
        """(module, file digest) of a detector (metrics.detectors.INCEPTION, VGG16, DINOV2), on this device."""
        module, digest = detectors.get_detector(detector, device=self.device, detector_dir=self.detector_dir,
                                                num_gpus=self.num_gpus, rank=self.rank, verbose=self.progress.verbose)
        self.report.detectors[detector.file_name] = digest[:12]
        return module, digest

    def real_moments(self, family):
        """(mu, sigma) of the real images from the reference statistics, or None to compute them from the images."""
        if self.reference is None:
            return None
        return reference_stats.moments_for(self.reference, family, self.reference_path)

    def random_streams(self, salt):
        """(torch.Generator on CPU, numpy RandomState) for this rank; `salt` separates uses within one metric."""
        seed = (self.seed * 1000003 + self.rank * 7919 + salt) % (2 ** 31)
        return torch.Generator().manual_seed(seed), np.random.RandomState(seed)

#----------------------------------------------------------------------------


class ProgressMonitor:
    """Progress of one metric's work on stderr (count/total, rate, ETA) via dnnlib.progress.Progress, when shown.

    The caller makes a parent, ProgressMonitor(show=True); each stage takes a child with sub(tag, num_items)
    and calls update(items done so far). stylegan2-ada-pytorch's interface, without its line per 1000 items.
    """

    def __init__(self,
        tag            = None,  # What is counted ('real images'); None = a parent that prints nothing itself.
        num_items      = None,  # Expected total, printed with the count; reaching it prints the final line.
        flush_interval = 1000,  # Accepted for stylegan2-ada-pytorch callers; dnnlib.progress.Progress decides when to print.
        verbose        = False, # Also let detector downloads say what they do?
        show           = None,  # Print progress at all? None = as `verbose`.
        stream         = None,  # Where progress goes; None = sys.stderr.
        clock          = None,  # Seconds function for tests; None = time.monotonic.
        prefix         = '',    # Printed before every tag, e.g. the metric's name: 'fid50k_full: '.
    ):
        del flush_interval
        self.tag = tag
        self.num_items = num_items
        self.verbose = verbose
        self.show = verbose if show is None else show
        self._stream = stream
        self._clock = clock
        self._prefix = prefix
        self._progress = None
        if self.show and tag is not None:
            self._progress = dnnlib.progress.Progress(total=num_items, label=prefix + tag, unit='images', stream=stream,
                                                  clock=clock or time.monotonic)

    def update(self, cur_items):
        if self._progress is not None:
            self._progress.update(cur_items)

    def close(self):
        """End the line of work that stopped short of num_items (or had none)."""
        if self._progress is not None:
            self._progress.close()

    def sub(self, tag=None, num_items=None, flush_interval=1000):
        return ProgressMonitor(tag=tag, num_items=num_items, flush_interval=flush_interval, verbose=self.verbose,
                               show=self.show, stream=self._stream, clock=self._clock, prefix=self._prefix)

#----------------------------------------------------------------------------
# Datasets named in files (training_options.json, network pickles, model.pt) are built only from this list:
# our class under the name training_options.json and stylegan2-ada-pytorch pickles record, and its module path.

DATASET_CLASSES = ('training.dataset.ImageFolderDataset', 'training.dataset.image_folder.ImageFolderDataset')


def construct_dataset(dataset_kwargs, source='dataset_kwargs', key='class_name'):
    """The dataset that `dataset_kwargs` describe, if its class_name is in DATASET_CLASSES.

    Anything else raises dnnlib.util.NotAllowedError (a ValueError) naming `source` and `key`, before any import.
    """
    return dnnlib.util.construct_allowed(dataset_kwargs, DATASET_CLASSES, source=source, key=key)

#----------------------------------------------------------------------------
# Helpers shared by the dataset and generator paths.


def gather_rows(x, num_gpus):
    """Rows of `x` from every rank, interleaved (rank 0 row 0, rank 1 row 0, ...); every rank gets all."""
    if num_gpus == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(num_gpus)]
    torch.distributed.all_gather(parts, x)
    return torch.stack(parts, dim=1).flatten(0, 1)


def to_detector_images(images):
    """uint8 NCHW images as the public detectors expect them: three channels."""
    if images.shape[1] == 1:
        images = images.repeat([1, 3, 1, 1])
    return images


def generator_images_to_uint8(images):
    """Generator output in [-1, 1] -> uint8 in [0, 255], as the images a dataset holds."""
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def make_label_sampler(opts, c_dim, rng):
    """Function n -> [n, c_dim] labels drawn from the dataset (zeros without conditioning; no dataset needed)."""
    if c_dim == 0:
        return lambda n: torch.zeros([n, 0], device=opts.device)
    dataset = construct_dataset(opts.dataset_kwargs)
    if dataset.label_dim != c_dim:
        raise ValueError(f'the generator takes {c_dim}-dim labels but dataset {opts.dataset_kwargs.get("path")} '
                         f'has {dataset.label_dim}-dim labels; pass the dataset it was trained on')

    def sample(n):
        labels = [dataset.get_label(int(i)) for i in rng.randint(len(dataset), size=n)]
        return torch.from_numpy(np.stack(labels)).to(opts.device)
    return sample

#----------------------------------------------------------------------------
# Dataset features, cached on disk.


def dataset_fingerprint(path):
    """What identifies the stored images: absolute path, and file count, bytes and newest mtime."""
    if path is None or not os.path.exists(path):
        return dict(path=path)
    if os.path.isfile(path):
        stat = os.stat(path)
        return dict(path=os.path.abspath(path), files=1, bytes=stat.st_size, mtime_ns=stat.st_mtime_ns)
    files, total_bytes, newest = 0, 0, 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            stat = os.stat(os.path.join(root, name))
            files, total_bytes, newest = files + 1, total_bytes + stat.st_size, max(newest, stat.st_mtime_ns)
    return dict(path=os.path.abspath(path), files=files, bytes=total_bytes, mtime_ns=newest)


def stats_cache_file(dataset_kwargs, dataset, detector_file_name, detector_digest, detector_kwargs, stats_kwargs):
    """Cache file for one (dataset, options, detector, statistic) combination."""
    key = dict(
        dataset_kwargs  = {k: (os.path.abspath(v) if k == 'path' and isinstance(v, str) else v) for k, v in dataset_kwargs.items()},
        dataset_files   = dataset_fingerprint(dataset_kwargs.get('path')),
        num_images      = len(dataset),
        image_shape     = list(dataset.image_shape),
        detector_digest = detector_digest,
        detector_kwargs = detector_kwargs,
        stats_kwargs    = stats_kwargs,
    )
    digest = hashlib.md5(json.dumps(key, sort_keys=True, default=str).encode('utf-8')).hexdigest()
    detector_name = os.path.splitext(detector_file_name)[0]
    return dnnlib.util.make_cache_dir_path('gan-metrics', f'{dataset.name}-{detector_name}-{digest}.npz')


def _all_ranks_agree(flag, opts):
    if opts.num_gpus == 1:
        return flag
    flag = torch.as_tensor(float(flag), dtype=torch.float32, device=opts.device)
    torch.distributed.broadcast(flag, src=0)
    return bool(flag.item() != 0)


def warn_if_biased(opts, what, num_items, num_features):
    """One warning line (rank 0) when a covariance comes from fewer images than it has features."""
    if opts.rank == 0 and num_items < num_features:
        print(f'Warning: {what}: {num_items} images for {num_features} features; the covariance is rank-deficient and '
              f'the estimate biased (published numbers use 50000)', file=sys.stderr, flush=True)


def compute_feature_stats_for_dataset(opts, detector, detector_kwargs, max_items=None, batch_size=64, role='real',
                                      **stats_kwargs):
    """FeatureStats of the real images (at most `max_items`), from the on-disk cache when present.

    role: 'real', or 'gen' for generated images read from a folder (opts.dataset_kwargs is then that folder's).
    """
    dataset = construct_dataset(opts.dataset_kwargs)
    module, digest = opts.get_detector(detector)
    num_items = len(dataset) if max_items is None else min(len(dataset), max_items)
    if num_items == 0:
        raise ValueError(f'{opts.dataset_kwargs.get("path")}: no images to compute statistics of')
    opts.report[f'num_{role}'] = num_items

    cache_file = None
    if opts.cache:
        cache_file = stats_cache_file(opts.dataset_kwargs, dataset, detector.file_name, digest, detector_kwargs,
                                      dict(stats_kwargs, max_items=num_items))
        if _all_ranks_agree(opts.rank == 0 and os.path.isfile(cache_file), opts):
            return FeatureStats.load(cache_file)

    stats = FeatureStats(max_items=num_items, **stats_kwargs)
    progress = opts.progress.sub(tag='real images' if role == 'real' else 'generated images', num_items=num_items)
    # Rank r reads items r, r + num_gpus, ...; every rank reads the same count (wrapping), extras are dropped.
    item_subset = [(i * opts.num_gpus + opts.rank) % num_items for i in range((num_items - 1) // opts.num_gpus + 1)]
    on_cuda = opts.device.type == 'cuda'
    loader = torch.utils.data.DataLoader(dataset=dataset, sampler=item_subset, batch_size=batch_size,
                                         num_workers=3 if on_cuda else 0, pin_memory=on_cuda)
    for images, _labels in loader:
        images = to_detector_images(images.to(opts.device))
        with torch.no_grad():
            features = module(images, **detector_kwargs)
        stats.append(gather_rows(features, opts.num_gpus).cpu().numpy())
        progress.update(stats.num_items)
    progress.close()

    if cache_file is not None and opts.rank == 0:
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        stats.save(cache_file)
    return stats

#----------------------------------------------------------------------------
# Generator features.


def compute_feature_stats_for_generator(opts, detector, detector_kwargs, max_items, batch_size=64, batch_gen=None, **stats_kwargs):
    """FeatureStats of `max_items` generated images; each rank generates its share, features are gathered.

    With opts.gen_dataset_kwargs the images are every image of that folder or zip, whatever `max_items` says.
    """
    if opts.gen_dataset_kwargs is not None:
        folder_opts = copy.copy(opts)
        folder_opts.dataset_kwargs = opts.gen_dataset_kwargs
        return compute_feature_stats_for_dataset(folder_opts, detector, detector_kwargs, max_items=None,
                                                 batch_size=batch_size, role='gen', **stats_kwargs)
    if batch_gen is None:  # Small generator calls bound GPU memory at 1024 px; on CPU, per-call overhead dominates.
        batch_gen = min(batch_size, 4 if opts.device.type == 'cuda' else 16)
    if batch_size % batch_gen != 0:
        raise ValueError(f'batch_size={batch_size} must be a multiple of batch_gen={batch_gen}')
    opts.report.num_gen = max_items
    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    z_rng, label_rng = opts.random_streams(salt=1)
    sample_labels = make_label_sampler(opts, G.c_dim, label_rng)
    module, _digest = opts.get_detector(detector)

    stats = FeatureStats(max_items=max_items, **stats_kwargs)
    progress = opts.progress.sub(tag='generated images', num_items=max_items)
    while not stats.is_full():
        images = []
        for _ in range(batch_size // batch_gen):
            z = torch.randn([batch_gen, G.z_dim], generator=z_rng).to(opts.device)
            c = sample_labels(batch_gen)
            with torch.no_grad():
                images.append(generator_images_to_uint8(G(z, c, **opts.G_kwargs)))
        with torch.no_grad():
            features = module(to_detector_images(torch.cat(images)), **detector_kwargs)
        stats.append(gather_rows(features, opts.num_gpus).cpu().numpy())
        progress.update(stats.num_items)
    progress.close()
    return stats


def compute_all_features(opts, detector, detector_kwargs, max_real, num_gen):
    """(real, generated) feature arrays, every row kept: what KID and precision/recall compare."""
    if opts.reference is not None:
        raise ValueError(f'--ref={opts.reference_path} holds means and covariances only; KID and precision/recall '
                         f'compare every image\'s features: pass the real images with --data instead')
    real = compute_feature_stats_for_dataset(opts, detector=detector, detector_kwargs=detector_kwargs,
                                             capture_all=True, max_items=max_real).get_all()
    gen = compute_feature_stats_for_generator(opts, detector=detector, detector_kwargs=detector_kwargs,
                                              capture_all=True, max_items=num_gen).get_all()
    return real, gen
