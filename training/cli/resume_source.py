"""What --resume names (a snapshot, "latest", a URL, a transfer-learning source) and the notice of what a resume changes."""

# The loop restores a run from what is resolved here (training/run/resume.py); finding the newest complete
# snapshot under --outdir and comparing the resumed run's training_options.json with this run's config are
# command-line concerns, decided before any process starts. Which options may change on resume without a
# word is the option table's `resume` column (options.py).

import json
import os
import sys

import dnnlib
from training import export
from training.cli import options as option_table
from training.cli import run_dir as run_dirs
from training.run import snapshot as run_snapshot
from training.run.resume import (RESUME_SUFFIX, SNAPSHOT_RE, ResumeError, pair_problem, plain_options,
                                 resume_state_path)

# Public transfer-learning sources of stylegan2-ada-pytorch, accepted by --resume as short names.
TRANSFER_SOURCES = {
    'ffhq256':     'ffhq-res256-mirror-paper256-noaug.pkl',
    'ffhq512':     'ffhq-res512-mirror-stylegan2-noaug.pkl',
    'ffhq1024':    'ffhq-res1024-mirror-stylegan2-noaug.pkl',
    'celebahq256': 'celebahq-res256-mirror-paper256-kimg100000-ada-target0.5.pkl',
    'lsundog256':  'lsundog-res256-paper256-kimg100000-noaug.pkl',
}
TRANSFER_URL = 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/'

#----------------------------------------------------------------------------
# Finding what to resume from.

def _snapshot_pairs(outdir):
    """Every snapshot pickle with a resume state beside it under outdir's run directories, newest first
    (highest run number, then most images shown)."""
    pairs = []
    for number, run_dir in run_dirs.list_runs(outdir):
        for f in os.listdir(run_dir):  # Temporary files of interrupted writes never match.
            snap = SNAPSHOT_RE.match(f)
            pkl = os.path.join(run_dir, f)
            if snap and os.path.isfile(pkl) and os.path.isfile(resume_state_path(pkl)):
                pairs.append(((number, run_snapshot.snapshot_nimg(*snap.groups())), pkl))
    return [pkl for _key, pkl in sorted(pairs, reverse=True)]


def find_latest_snapshot(outdir, log=None):
    """Newest consistent snapshot pair (pickle + the resume state written for it) under outdir, or None.

    A pair whose resume state belongs to another version of the pickle (a run killed between rewriting
    the two) is skipped, saying so, and the next older pair is taken.
    """
    log = log or (lambda text: print(text, file=sys.stderr))  # stdout may carry --dry-run's JSON.
    for pkl in _snapshot_pairs(outdir):
        problem = pair_problem(pkl)
        if problem is None:
            return pkl
        log(f'--resume=latest: skipping {pkl} ({problem}); trying the previous snapshot')
    return None


def resolve_resume(resume, outdir):
    """(resume_pkl, resume_state or None, description) for the --resume value."""
    if resume in (None, '', 'noresume'):
        return None, None, None
    if resume == 'latest':
        pkl = find_latest_snapshot(outdir)
        if pkl is None:
            raise ResumeError(f'--resume=latest: no complete snapshot (network-snapshot-*.pkl with {RESUME_SUFFIX}) under {outdir}')
        return pkl, resume_state_path(pkl), 'latest'
    if resume in TRANSFER_SOURCES:
        return TRANSFER_URL + TRANSFER_SOURCES[resume], None, resume
    if dnnlib.util.is_url(resume):
        return resume, None, 'custom'
    if os.path.isdir(resume):
        raise ResumeError(f'--resume={export.folder_problem(resume)} (or --resume=latest with --outdir above it)')
    if resume.endswith(RESUME_SUFFIX):
        raise ResumeError(f'--resume={resume}: a resume state; pass the snapshot it belongs to, '
                          f'{resume[:-len(RESUME_SUFFIX)]}.pkl, and the state beside it is read too')
    if not os.path.isfile(resume):
        raise ResumeError(f'--resume={resume}: file not found; accepted: a snapshot or model file, a URL, "latest", '
                          f'"noresume" or one of {", ".join(TRANSFER_SOURCES)}')
    state = resume_state_path(resume)
    return resume, (state if os.path.isfile(state) else None), 'custom'

#----------------------------------------------------------------------------
# What the resume changes.

def option_differences(resumed_options, config):
    """['key: old -> new', ...] for every config entry (nested keys dotted) that differs from the resumed run's,
    leaving out those of options that may change freely on resume (the table's resume column)."""
    return _differences(resumed_options or {}, plain_options(dict(config)), prefix='')


def _differences(old, new, prefix):
    found = []
    for key in sorted(set(old) | set(new)):
        if not prefix and key in option_table.FREE_ON_RESUME:
            continue
        before, after = old.get(key, '(none)'), new.get(key, '(none)')
        if isinstance(before, dict) and isinstance(after, dict):
            found += _differences(before, after, f'{prefix}{key}.')
        elif before != after:
            found.append(f'{prefix}{key}: {_short(before)} -> {_short(after)}')
    return found


def _short(value, limit=80):
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + '...'


def resume_notice(config):
    """One line listing every option that differs from the resumed run's training_options.json (old -> new), or
    None: nothing differs, or the resumed file is not in one of our run folders (a file of its own, a URL)."""
    if not config.get('resume_pkl') or dnnlib.util.is_url(config.resume_pkl):
        return None
    path = os.path.join(os.path.dirname(os.path.abspath(config.resume_pkl)), run_dirs.OPTIONS_FILE)
    try:
        with open(path, encoding='utf-8') as f:
            resumed = json.load(f)
    except (OSError, ValueError):
        return None
    differences = option_differences(resumed if isinstance(resumed, dict) else {}, config)
    if not differences:
        return None
    return f'Options that differ from the resumed run ({path}), old -> new: {"; ".join(differences)}'
