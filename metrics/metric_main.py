"""Metric registry by name (stylegan2-ada-pytorch's names, plus other sample counts), evaluation and reporting."""

import json
import os
import re
import time

import torch

import dnnlib
from metrics import detectors
from metrics import fd_dinov2
from metrics import frechet_inception_distance
from metrics import inception_score
from metrics import kernel_inception_distance
from metrics import metric_utils
from metrics import perceptual_path_length
from metrics import precision_recall

# Caps on real samples for the "_full" variants (the whole dataset up to what fits in memory).
KID_FULL_MAX_REAL = 1000000
PR_FULL_MAX_REAL = 200000

#----------------------------------------------------------------------------
# One function per metric family. Each gets the options, the metric's name and the numbers parsed from it,
# and returns {result name: value}. "_full" variants use the whole dataset without mirroring; the others
# (legacy) use as many real images as generated ones, with the dataset's own mirroring.


def _real_images(opts, full):
    opts.dataset_kwargs.update(max_size=None)
    if full:
        opts.dataset_kwargs.update(xflip=False)


def _fid(opts, name, num_gen, full):
    _real_images(opts, full)
    fid = frechet_inception_distance.compute_fid(opts, max_real=None if full else num_gen, num_gen=num_gen)
    return {name: fid}


def _fd_dinov2(opts, name, num_gen, full):
    _real_images(opts, full)
    return {name: fd_dinov2.compute_fd_dinov2(opts, max_real=None if full else num_gen, num_gen=num_gen)}


def _kid(opts, name, num_gen, full):
    _real_images(opts, full)
    kid = kernel_inception_distance.compute_kid(opts, max_real=KID_FULL_MAX_REAL if full else num_gen, num_gen=num_gen,
                                                num_subsets=100, max_subset_size=1000)
    return {name: kid}


def _pr(opts, name, num_gen, full, nhood_size):
    _real_images(opts, full)
    precision, recall = precision_recall.compute_pr(opts, max_real=PR_FULL_MAX_REAL if full else num_gen, num_gen=num_gen,
                                                    nhood_size=nhood_size)
    return {f'{name}_precision': precision, f'{name}_recall': recall}


def _is(opts, name, num_gen):
    _real_images(opts, full=True)  # Only labels are read from the dataset.
    mean, std = inception_score.compute_is(opts, num_gen=num_gen, num_splits=10)
    return {f'{name}_mean': mean, f'{name}_std': std}


def _ppl(opts, name, space, sampling, crop):
    ppl = perceptual_path_length.compute_ppl(opts, num_samples=50000, epsilon=1e-4, space=space, sampling=sampling,
                                             crop=crop, batch_size=2)
    return {name: ppl}


def _ppl_face_crop(opts, name, space, sampling):
    return _ppl(opts, name, space, sampling, crop=True)


def _ppl_whole_image(opts, name, space, sampling):
    return _ppl(opts, name, space, sampling, crop=False)

#----------------------------------------------------------------------------
# The registry: a name pattern per family, and how its groups become arguments.

_KILO = r'(?P<num_gen>[1-9]\d*)k'
_REGISTRY = [
    (re.compile(rf'fid{_KILO}(?P<full>_full)?'),                         _fid),
    (re.compile(rf'kid{_KILO}(?P<full>_full)?'),                         _kid),
    (re.compile(rf'fd_dinov2_{_KILO}(?P<full>_full)?'),                  _fd_dinov2),
    (re.compile(rf'pr{_KILO}(?P<nhood_size>[1-9])(?P<full>_full)?'),     _pr),
    (re.compile(rf'is{_KILO}'),                                          _is),
    (re.compile(r'ppl_(?P<space>[zw])(?P<sampling>full|end)'),           _ppl_face_crop),
    (re.compile(r'ppl2_(?P<space>[zw])(?P<sampling>full|end)'),          _ppl_whole_image),
]

# The names stylegan2-ada-pytorch documents; any other sample count (fid3k_full, kid10k_full, pr10k3_full,
# is10k, ...) is accepted too.
PRIMARY_METRICS = ['fid50k_full', 'kid50k_full', 'pr50k3_full', 'is50k', 'ppl2_wend', 'fd_dinov2_50k_full',
                   'fd_dinov2_10k_full']
LEGACY_METRICS = ['fid50k', 'kid50k', 'pr50k3', 'ppl_zfull', 'ppl_wfull', 'ppl_zend', 'ppl_wend']


def _parse(metric):
    """(family function, keyword arguments) for a metric name, or None."""
    if not isinstance(metric, str):
        return None
    for pattern, family in _REGISTRY:
        match = pattern.fullmatch(metric)
        if match is None:
            continue
        kwargs = {}
        for key, value in match.groupdict().items():
            if key == 'full':
                kwargs[key] = value is not None
            elif key == 'num_gen':
                kwargs[key] = int(value) * 1000
            elif key == 'nhood_size':
                kwargs[key] = int(value)
            else:
                kwargs[key] = value
        return family, kwargs
    return None


# The detector files each family reads (metrics/detectors.py): Inception for FID, KID and IS; VGG16 for
# precision/recall and the LPIPS distance of PPL; DINOv2 ViT-L/14 for FD-DINOv2.
_FAMILY_DETECTORS = {_fid: ('INCEPTION',), _kid: ('INCEPTION',), _is: ('INCEPTION',), _pr: ('VGG16',),
                     _fd_dinov2: ('DINOV2',),
                     _ppl_face_crop: ('VGG16',), _ppl_whole_image: ('VGG16',)}


def required_detectors(metric):
    """The detectors (metrics.detectors.INCEPTION / VGG16) that computing `metric` loads; ValueError for an unknown name."""
    parsed = _parse(metric)
    if parsed is None:
        raise ValueError(f'unknown metric {metric!r}; accepted: {describe_valid_metrics()}')
    return [getattr(detectors, name) for name in _FAMILY_DETECTORS[parsed[0]]]


def is_valid_metric(metric):
    return _parse(metric) is not None


def list_valid_metrics():
    return PRIMARY_METRICS + LEGACY_METRICS


def describe_valid_metrics():
    """One line listing accepted names, for error messages."""
    return f'{", ".join(list_valid_metrics())} (or another count: fid3k_full, kid10k_full, pr10k3_full, is10k, ...)'

#----------------------------------------------------------------------------


def calc_metric(metric, G=None, dataset_kwargs={}, num_gpus=1, rank=0, device=None, cache=True, detector_dir=None,
                progress=None, G_kwargs={}, seed=0, gen_dataset_kwargs=None, reference=None, reference_path=None):
    """Evaluate `metric` on generator G (or the images of gen_dataset_kwargs) against the dataset (or the reference
    statistics); arguments as metric_utils.MetricOptions.

    Every rank gets rank 0's results. Raises ValueError for an unknown name (listing accepted ones) and
    metrics.detectors.DetectorUnavailableError when a detector file can be neither found nor downloaded.
    """
    parsed = _parse(metric)
    if parsed is None:
        raise ValueError(f'unknown metric {metric!r}; accepted: {describe_valid_metrics()}')
    family, family_kwargs = parsed
    opts = metric_utils.MetricOptions(G=G, G_kwargs=G_kwargs, dataset_kwargs=dataset_kwargs, num_gpus=num_gpus, rank=rank,
                                      device=device, progress=progress, cache=cache, detector_dir=detector_dir, seed=seed,
                                      gen_dataset_kwargs=gen_dataset_kwargs, reference=reference,
                                      reference_path=reference_path)

    start_time = time.time()
    results = family(opts, metric, **family_kwargs)
    total_time = time.time() - start_time

    for key, value in list(results.items()):
        if opts.num_gpus > 1:
            value = torch.as_tensor(value, dtype=torch.float64, device=opts.device)
            torch.distributed.broadcast(value, src=0)
        results[key] = float(value)
    return dnnlib.EasyDict(
        results        = dnnlib.EasyDict(results),
        metric         = metric,
        total_time     = total_time,
        total_time_str = dnnlib.util.format_time(total_time),
        num_gpus       = opts.num_gpus,
        num_real       = opts.report.get('num_real'),   # Images each side used (None: from reference statistics).
        num_gen        = opts.report.get('num_gen'),
        detectors      = dict(opts.report.detectors),   # Detector file -> sha256 prefix: comparable results match.
    )


def report_metric(result_dict, run_dir=None, snapshot_pkl=None):
    """Print the result as one JSON line; with a run directory, also append it to metric-<name>.jsonl there.

    The file is rewritten through a temp file and renamed, so a crash or a full disk never leaves a torn line:
    a full disk or a read-only run directory raises dnnlib.util.WriteError (one line naming the file) after
    the result is printed, and the earlier lines stay as they were. A training run and calc_metrics.py adding
    to the same file at once take turns (dnnlib.util.append_atomically): no result is lost.
    """
    metric = result_dict['metric']
    if run_dir is not None and snapshot_pkl is not None:
        snapshot_pkl = os.path.relpath(snapshot_pkl, run_dir)
    line = json.dumps(dict(result_dict, snapshot_pkl=snapshot_pkl, timestamp=time.time()))
    print(line, flush=True)
    if run_dir is not None and os.path.isdir(run_dir):
        dnnlib.util.append_atomically(os.path.join(run_dir, f'metric-{metric}.jsonl'), (line + '\n').encode('utf-8'))
    return line
