"""Run a tool as if its disk filled up: `python tests/full_disk.py N[:TEXT]|open:PREFIX SCRIPT.py|-m MODULE [ARGS...]`.

The first N files written through dnnlib.util.atomic_write are written normally; every later one is
written to /dev/full, so the operating system itself answers ENOSPC, as it does on a full disk. With
N:TEXT only files whose name contains TEXT count and fail (e.g. 1:network-snapshot lets the first
snapshot through and fails the later ones). The temporary file each write creates is real, so the
tool's clean-up is exercised too. With open:PREFIX, every file whose name starts with PREFIX that is opened for
writing or appending (log.txt, TensorBoard's events.out.tfevents.*) goes to /dev/full instead.
"""

import builtins
import io
import os
import runpy
import sys
import tempfile


def fill_disk_after(allowed_files, name_part=''):
    """Make every atomic_write (of a file whose name contains `name_part`) after the first `allowed_files` fail with ENOSPC."""
    real_mkstemp = tempfile.mkstemp
    count = [0]

    def mkstemp(*args, **kwargs):
        fd, path = real_mkstemp(*args, **kwargs)
        if name_part not in os.path.basename(path):
            return fd, path
        count[0] += 1
        if count[0] > allowed_files:
            os.close(fd)
            fd = os.open('/dev/full', os.O_WRONLY)
        return fd, path

    tempfile.mkstemp = mkstemp


def fill_disk_for(prefix):
    """Every open() for writing of a file whose name starts with `prefix` writes to /dev/full (ENOSPC at the flush)."""
    real_open = builtins.open

    def open_full(file, mode='r', *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and os.path.basename(os.fsdecode(file)).startswith(prefix) and \
                any(flag in mode for flag in 'wax'):
            file = '/dev/full'
            mode = mode.replace('x', 'w')
        return real_open(file, mode, *args, **kwargs)
    builtins.open = io.open = open_full


def main(argv):
    allowed, _, name_part = argv[0].partition(':')
    if allowed == 'open':
        fill_disk_for(name_part)
    else:
        fill_disk_after(int(allowed), name_part)
    target = argv[1:]
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, repo_root)
    if target[0] == '-m':
        sys.argv = [target[1], *target[2:]]
        runpy.run_module(target[1], run_name='__main__', alter_sys=True)
    else:
        sys.argv = target
        runpy.run_path(target[0], run_name='__main__')


if __name__ == '__main__':
    main(sys.argv[1:])
