"""Run directories: <outdir>/NNNNN-<description>/, numbered after every existing run and never reused."""

import json
import os
import re

import dnnlib

RUN_DIR_RE = re.compile(r'^(\d+)-')


def next_run_id(outdir):
    """One more than the highest NNNNN of any entry in outdir (0 for an empty or missing folder)."""
    ids = [int(m.group(1)) for m in map(RUN_DIR_RE.match, os.listdir(outdir) if os.path.isdir(outdir) else []) if m]
    return max(ids, default=-1) + 1


def create_run_dir(outdir, desc):
    """Create and return a fresh run directory; a concurrent creator of the same id makes us take the next."""
    os.makedirs(outdir, exist_ok=True)
    run_id = next_run_id(outdir)
    while True:
        run_dir = os.path.join(outdir, f'{run_id:05d}-{desc}')
        try:
            os.makedirs(run_dir, exist_ok=False)
            return run_dir
        except FileExistsError:
            run_id += 1


def write_json(path, obj):
    """Write obj as indented JSON through a temporary file renamed into place."""
    with dnnlib.util.atomic_write(path, 'w') as f:
        json.dump(obj, f, indent=2)
        f.write('\n')
