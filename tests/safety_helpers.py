"""Malicious network pickles for the safety tests: each would create a marker file if anything in it ran."""

import builtins
import io
import os
import pickle
import subprocess
import sys

import torch

from torch_utils import persistence
from tests import limits

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Call:
    """Pickles as `func(*args)`: what a hostile `__reduce__` makes the unpickler do."""

    def __init__(self, func, *args):
        self.func = func
        self.args = args

    def __reduce__(self):
        return self.func, self.args


def open_payload(marker):
    """Creates `marker` without a shell: builtins.open(marker, 'w')."""
    return Call(builtins.open, str(marker), 'w')


def system_payload(marker):
    """Creates `marker` through a shell; pickles as posix.system (nt.system on Windows)."""
    return Call(os.system, f'touch {marker}')


def storage_payload(marker):
    """A tensor storage whose bytes are a torch.save file that opens `marker` when torch.load unpickles it.

    torch's own storage loader reads such bytes with torch.load(weights_only=False), so allowing
    torch.storage._load_from_bytes as it is would run the payload.
    """
    buffer = io.BytesIO()
    torch.save(open_payload(marker), buffer, _use_new_zipfile_serialization=False)
    return Call(torch.storage._load_from_bytes, buffer.getvalue())  # pylint: disable=protected-access


def persistent_payload(module_name, class_name, state=None, module_src='', version=6):
    """A persistent object whose meta names any module and class, as a hostile file can."""
    meta = dict(type='class', version=version, module_name=module_name, class_name=class_name,
                module_src=module_src, state=dict(state or {}))
    return Call(persistence._reconstruct_persistent_obj, meta)  # pylint: disable=protected-access


def popen_payload(marker):
    """subprocess.Popen named as a persistent class: its state would be an open process handle."""
    return persistent_payload('subprocess', 'Popen', state=dict(args=['touch', str(marker)]))


def embedded_source_payload(marker, class_name='Widget'):
    """A persistent object of an unknown class whose embedded module source creates `marker` when executed."""
    source = f'open({str(marker)!r}, "w").close()\nclass {class_name}:\n    pass\n'
    return Call(persistence._reconstruct_persistent_obj,  # pylint: disable=protected-access
                dict(type='class', version=6, module_src=source, class_name=class_name, state={}))


def network_pickle(path, payload, protocol=pickle.DEFAULT_PROTOCOL):
    """Write a snapshot-like dict whose G_ema is `payload`; return the path."""
    with open(path, 'wb') as f:
        pickle.dump(dict(G_ema=payload, training_set_kwargs=None), f, protocol=protocol)
    return str(path)


def run_entry_point(args, cwd, timeout=limits.seconds(300)):
    """Run `python ARGS` from the repository root as a user would; returns the CompletedProcess."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONPATH=REPO_ROOT)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def run_with_full_disk(args, cwd, allowed_files=0, timeout=limits.seconds(300), name_part=''):
    """Run `python ARGS` as run_entry_point does, but every atomic write after the first `allowed_files` hits ENOSPC.

    name_part: only writes of files whose name contains it count and fail.
    """
    spec = f'{allowed_files}:{name_part}' if name_part else str(allowed_files)
    return run_entry_point([os.path.join(REPO_ROOT, 'tests', 'full_disk.py'), spec, *args], cwd, timeout)


def run_with_full_file(args, cwd, prefix, timeout=limits.seconds(300)):
    """Run `python ARGS`, every file whose name starts with `prefix` opened for writing on a full disk (ENOSPC)."""
    return run_entry_point([os.path.join(REPO_ROOT, 'tests', 'full_disk.py'), f'open:{prefix}', *args], cwd, timeout)
