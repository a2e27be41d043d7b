"""The public feature detectors (Inception, VGG16 TorchScript files; DINOv2 checkpoints): where they are found and
how they are loaded."""

# Our numbers are comparable with published ones only when they come from the same detector files that
# stylegan2-ada-pytorch uses. A detector is looked up by its published file name, in this order:
#   1. the folder given as --detector-dir (detector_dir=...), then the folder in $SQUEEZEGAN_DETECTOR_DIR;
#   2. its public URL, downloaded once into the dnnlib cache by dnnlib.util.open_url.
# Machines without internet copy the files into a folder and name it with either option.

import hashlib
import os
import sys
import warnings

import torch

import dnnlib
from metrics import dinov2

DETECTOR_DIR_ENV = 'SQUEEZEGAN_DETECTOR_DIR'
_URL_ROOT = 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics'

# Published file names and URLs. Calling conventions of the public files:
#   inception(uint8 NCHW, return_features=True) -> [N, 2048] pool features (FID, KID);
#   inception(uint8 NCHW, no_output_bias=True)  -> [N, 1008] class probabilities (IS);
#   vgg16(uint8 NCHW, return_features=True)     -> [N, 4096] features (precision/recall);
#   vgg16(float NCHW in [0, 255], resize_images=False, return_lpips=True) -> LPIPS embedding (PPL).
# `size` is approximate (from the parameter counts), for the message that lists missing files.
INCEPTION = dnnlib.EasyDict(file_name='inception-2015-12-05.pt', url=f'{_URL_ROOT}/inception-2015-12-05.pt',
                            size='about 95 MB')
VGG16 = dnnlib.EasyDict(file_name='vgg16.pt', url=f'{_URL_ROOT}/vgg16.pt', size='about 530 MB')
# DINOv2 ViT-L/14 (FD-DINOv2): the official checkpoint, a plain state dict that metrics/dinov2.py loads weights-only;
#   dinov2(uint8 NCHW) -> [N, 1024] final-norm class tokens (EDM2's preprocessing inside).
DINOV2 = dnnlib.EasyDict(file_name='dinov2_vitl14_pretrain.pth', loader='dinov2', size='about 1.2 GB',
                         url='https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth')
ALL_DETECTORS = (INCEPTION, VGG16, DINOV2)
FETCH_COMMAND = 'python -m metrics.detectors fetch DIR'


class DetectorUnavailableError(OSError):
    """A detector file that is neither in the detector folder nor downloadable; the message is one line."""

#----------------------------------------------------------------------------


def detector_folders(detector_dir=None):
    """Folders searched for detector files, in order: the explicit one, then $SQUEEZEGAN_DETECTOR_DIR."""
    folders = []
    if detector_dir is not None:
        folders.append(os.fspath(detector_dir))
    if os.environ.get(DETECTOR_DIR_ENV):
        folders.append(os.environ[DETECTOR_DIR_ENV])
    return folders


def resolve_detector_file(detector, detector_dir=None, verbose=False):
    """Local file name of `detector` (INCEPTION or VGG16): from a detector folder, else downloaded and cached.

    An explicit `detector_dir` (--detector-dir) means offline: the file must be there (or already in the
    download cache); nothing is downloaded.
    """
    folders = detector_folders(detector_dir)
    for folder in folders:
        candidate = os.path.join(folder, detector.file_name)
        if os.path.isfile(candidate):
            return candidate
    cached = dnnlib.util.url_cache_path(detector.url)
    if detector_dir is not None:
        if os.path.isfile(cached):
            return cached
        raise DetectorUnavailableError(
            f'feature detector {detector.file_name}{f" ({detector.size})" if detector.get("size") else ""} is not in '
            f'--detector-dir {os.fspath(detector_dir)} '
            f'(nothing is downloaded when a folder is given); get it from {detector.url} into that folder (or '
            f'${DETECTOR_DIR_ENV}), or all of them where there is internet: {FETCH_COMMAND}')
    try:
        return dnnlib.util.open_url(detector.url, verbose=verbose, return_filename=True)
    except OSError as error:
        searched = f'is not in {", ".join(folders)} and ' if folders else ''
        reason = str(error).splitlines()[0].split(';')[0] if str(error) else type(error).__name__
        reason = reason.replace(f'cannot download {detector.url} ', '').strip('() ')
        raise DetectorUnavailableError(
            f'feature detector {detector.file_name} {searched}cannot be downloaded from {detector.url} '
            f'({reason}); download it where there is internet and pass its folder with --detector-dir '
            f'(or ${DETECTOR_DIR_ENV}), or copy it to {dnnlib.util.url_cache_path(detector.url)}') from error

def check_detectors(needed, detector_dir=None):
    """Every detector of `needed` ({file name: detector}) found or downloadable; otherwise one
    DetectorUnavailableError that names all the missing files, each with where to get it."""
    problems = []
    for detector in needed.values():
        try:
            resolve_detector_file(detector, detector_dir=detector_dir)
        except DetectorUnavailableError as error:
            problems.append(str(error))
    if len(problems) == 1:
        raise DetectorUnavailableError(problems[0])
    if problems:
        raise DetectorUnavailableError(f'{len(problems)} detector files are missing: ' + '; '.join(problems))

#----------------------------------------------------------------------------
# Loaded detectors are kept per (file, file version, device): loading the 100 MB Inception file for every
# snapshot of a training run would cost more than evaluating it. The memo never changes a result: a
# replaced file has a new size or mtime and is loaded again.

_loaded_detectors = {}
_file_digests = {}


def _file_version(path):
    stat = os.stat(path)
    return (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


def detector_digest(path):
    """SHA-256 of a detector file; part of the feature-statistics cache key, so a different file misses."""
    version = _file_version(path)
    if version not in _file_digests:
        sha = hashlib.sha256()
        with open(path, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                sha.update(chunk)
        _file_digests[version] = sha.hexdigest()
    return _file_digests[version]


def load_detector_file(path, device, loader=None):
    """The detector in `path` in eval mode on `device`: a TorchScript module, or (loader='dinov2') our DINOv2 network
    with the checkpoint's weights."""
    key = (_file_version(path), str(torch.device(device)))
    if key not in _loaded_detectors and loader == 'dinov2':
        try:
            _loaded_detectors[key] = dinov2.load_detector(path, device)
        except ValueError as error:
            raise DetectorUnavailableError(str(error)) from None
    if key not in _loaded_detectors:
        try:
            with warnings.catch_warnings():  # torch 2.x deprecates TorchScript; the public detector files are TorchScript.
                warnings.simplefilter('ignore', DeprecationWarning)
                module = torch.jit.load(path, map_location='cpu')
        except (RuntimeError, ValueError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise DetectorUnavailableError(f'{path}: not a readable TorchScript detector ({first_line})') from error
        _loaded_detectors[key] = module.eval().to(device)  # Callers run it under torch.no_grad().
    return _loaded_detectors[key]


def get_detector(detector, device, detector_dir=None, num_gpus=1, rank=0, verbose=False):
    """Resolve and load a detector; with several ranks, rank 0 downloads first and the others then read the cache.

    Returns (module, digest of its file).
    """
    if num_gpus > 1 and rank != 0:
        torch.distributed.barrier()
    try:
        path = resolve_detector_file(detector, detector_dir=detector_dir, verbose=verbose and rank == 0)
        module = load_detector_file(path, device, loader=detector.get('loader'))
        digest = detector_digest(path)
    finally:
        if num_gpus > 1 and rank == 0:
            torch.distributed.barrier()
    return module, digest

#----------------------------------------------------------------------------
# python -m metrics.detectors fetch DIR: every detector file into a folder, for machines without internet.


def fetch(folder, names=None, log=print):
    """Download the detector files (all, or those in `names`) into `folder`; a file already there is kept."""
    os.makedirs(folder, exist_ok=True)
    for detector in ALL_DETECTORS:
        if names and detector.file_name not in names:
            continue
        path = os.path.join(folder, detector.file_name)
        if os.path.isfile(path):
            log(f'{path}: already there')
            continue
        log(f'{detector.file_name} ({detector.size}) from {detector.url}')
        with dnnlib.util.open_url(detector.url, cache=False) as source, dnnlib.util.atomic_write(path, 'wb') as f:
            for chunk in iter(lambda: source.read(1 << 20), b''):
                f.write(chunk)
        log(f'{path}: sha256 {detector_digest(path)[:12]}')


def main(argv=None):
    """`fetch DIR [FILE ...]`; a failure is one line and exit code 1."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or argv[0] != 'fetch':
        print(f'usage: {FETCH_COMMAND} [FILE ...]; files: {", ".join(d.file_name for d in ALL_DETECTORS)}',
              file=sys.stderr)
        return 2
    unknown = [name for name in argv[2:] if name not in {d.file_name for d in ALL_DETECTORS}]
    if unknown:
        print(f'Error: {unknown[0]} is not a detector file; accepted: {", ".join(d.file_name for d in ALL_DETECTORS)}',
              file=sys.stderr)
        return 2
    try:
        fetch(argv[1], names=argv[2:])
    except OSError as error:
        print(f'Error: {str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__}',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
