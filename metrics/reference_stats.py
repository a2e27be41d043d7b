"""Reference statistics of a real image set (feature means and covariances) saved once and used instead of the images.

Our files are .npz with the arrays inception_mu, inception_sigma, dinov2_mu, dinov2_sigma and num_images, read
with allow_pickle=False. EDM2's published reference files (a pickle of {'fid': {'mu', 'sigma'}, 'fd_dinov2': {...}})
are read through the restricted unpickler: numpy arrays and plain containers only, nothing that runs code.
"""

import os

import numpy as np

import dnnlib
from torch_utils import safe_unpickle

# Metric family -> (our array-name prefix, EDM2's key).
FAMILIES = {'fid': ('inception', 'fid'), 'fd_dinov2': ('dinov2', 'fd_dinov2')}


class ReferenceStatsError(ValueError):
    """A reference file that cannot be used; the message is one line naming it."""


def save_reference(path, moments, num_images):
    """Write {family: (mu, sigma)} and the image count to `path` (.npz), through a temporary file."""
    arrays = dict(num_images=np.int64(num_images))
    for family, (mu, sigma) in moments.items():
        prefix = FAMILIES[family][0]
        arrays[f'{prefix}_mu'], arrays[f'{prefix}_sigma'] = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
    with dnnlib.util.atomic_write(path, 'wb') as f:
        np.savez(f, **arrays)


def load_reference(path):
    """{family: (mu, sigma)} plus 'num_images' (None when the file does not say) of an .npz or EDM2 .pkl file."""
    if not os.path.isfile(path):
        raise ReferenceStatsError(f'--ref={path}: file not found')
    try:
        with open(path, 'rb') as f:
            head = f.read(4)
        moments = _load_npz(path) if head.startswith(b'PK') else _load_edm2_pickle(path)
    except ReferenceStatsError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReferenceStatsError(f'--ref={path}: not a reference statistics file ({reason}); accepted: an .npz written by '
                             f'calc_metrics.py --ref-out, or an EDM2 reference .pkl') from None
    for family, value in moments.items():
        if family != 'num_images':
            _check_moments(path, family, *value)
    return moments


def _load_npz(path):
    with np.load(path, allow_pickle=False) as data:
        moments = {family: (data[f'{prefix}_mu'], data[f'{prefix}_sigma']) for family, (prefix, _key) in FAMILIES.items()
                   if f'{prefix}_mu' in data.files and f'{prefix}_sigma' in data.files}
        moments['num_images'] = int(data['num_images']) if 'num_images' in data.files else None
    return moments


def _load_edm2_pickle(path):
    with open(path, 'rb') as f:
        data = safe_unpickle.RestrictedUnpickler(f).load()
    if not isinstance(data, dict):
        raise ReferenceStatsError(f'--ref={path}: expected a dict of statistics, got {type(data).__name__}')
    moments = {family: (np.asarray(data[key]['mu']), np.asarray(data[key]['sigma']))
               for family, (_prefix, key) in FAMILIES.items()
               if isinstance(data.get(key), dict) and 'mu' in data[key] and 'sigma' in data[key]}
    moments['num_images'] = None
    return moments


def _check_moments(path, family, mu, sigma):
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]) or not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ReferenceStatsError(f'--ref={path}: {family} statistics have shapes {list(mu.shape)} and {list(sigma.shape)} '
                             f'(or non-finite values); expected a mean [F] and a finite covariance [F, F]')


def moments_for(reference, family, path):
    """(mu, sigma) of `family` in a loaded reference, or ReferenceStatsError naming what the file holds."""
    if family not in reference:
        held = ', '.join(name for name in FAMILIES if name in reference) or 'nothing usable'
        raise ReferenceStatsError(f'--ref={path} holds no {family} statistics (it holds {held})')
    return reference[family]
