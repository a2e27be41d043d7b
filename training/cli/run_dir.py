"""Run directories: <outdir>/NNNNN-<description>/, numbered after every existing run and never reused."""

# A run directory is a folder named with five or more digits and a dash that holds training_options.json
# (as stylegan2-ada-pytorch's are); nothing else in --outdir counts for run numbers or is ever touched. A
# training process holds an advisory lock (flock) on its run directory for as long as it runs; the kernel
# drops it when the process dies, however it dies. A new run in the same --outdir removes the temporary
# files that killed writes left behind (dnnlib.util.ATOMIC_TEMP_RE, a name only atomic_write makes), but
# only in run directories whose lock it can take, so it never deletes a live run's write in progress.

import contextlib
import fcntl
import json
import os
import re
import shutil

import dnnlib

RUN_DIR_RE = re.compile(r'^(\d{5,})-')
OPTIONS_FILE = 'training_options.json'


def list_runs(outdir):
    """[(run number, path)] of the run directories in outdir (see above), in no particular order."""
    runs = []
    for entry in (os.listdir(outdir) if os.path.isdir(outdir) else []):
        match = RUN_DIR_RE.match(entry)
        path = os.path.join(outdir, entry)
        if match and os.path.isfile(os.path.join(path, OPTIONS_FILE)):
            runs.append((int(match.group(1)), path))
    return runs


def next_run_id(outdir):
    """One more than the highest run number in outdir (0 for none); a user's other folders do not count."""
    return max((number for number, _path in list_runs(outdir)), default=-1) + 1


def create_run_dir(outdir, desc):
    """Create and return a fresh run directory (its caller writes training_options.json at once); a concurrent
    creator of the same name makes us take the next number."""
    os.makedirs(outdir, exist_ok=True)
    run_id = next_run_id(outdir)
    while True:
        run_dir = os.path.join(outdir, f'{run_id:05d}-{desc}')
        try:
            os.makedirs(run_dir, exist_ok=False)
            return run_dir
        except FileExistsError:
            run_id += 1
        except OSError as exc:  # A full disk or a read-only --outdir: one line naming the folder.
            raise dnnlib.util.write_error(exc, run_dir) or exc from None


def write_json(path, obj):
    """Write obj as indented JSON through a temporary file renamed into place."""
    with dnnlib.util.atomic_write(path, 'w') as f:
        json.dump(obj, f, indent=2)
        f.write('\n')


def remove_if_no_snapshot(run_dir):
    """Delete a run directory that holds no snapshot yet (only what a start writes); True if it was deleted."""
    names = os.listdir(run_dir) if os.path.isdir(run_dir) else []
    if any(name.startswith('network-snapshot-') for name in names):
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return not os.path.exists(run_dir)


@contextlib.contextmanager
def run_lock(run_dir):
    """Hold the run directory's lock while the block runs (a no-op where the file system has no flock)."""
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)  # Releases the lock.


def remove_stale_temp_files(outdir):
    """Delete leftover temporary files in the run directories of `outdir` that no live run holds; returns their paths."""
    removed = []
    for _number, run_dir in sorted(list_runs(outdir)):
        removed += _remove_temp_files_if_unlocked(run_dir)
    return removed


def _remove_temp_files_if_unlocked(run_dir):
    try:
        fd = os.open(run_dir, os.O_RDONLY)
    except OSError:
        return []
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # A live run holds it (or no flock here): leave its files alone.
        os.close(fd)
        return []
    removed = []
    try:
        for name in os.listdir(run_dir):
            path = os.path.join(run_dir, name)
            if dnnlib.util.ATOMIC_TEMP_RE.match(name) and os.path.isfile(path):
                with contextlib.suppress(OSError):
                    os.remove(path)
                    removed.append(path)
    finally:
        os.close(fd)
    return removed
