"""bench/train_speed.py and bench/comm_wait.py run, say what they measured, and print what the GPU acceptance report
reads (tiny smoke runs on the CPU; no timing asserted). A broken benchmark would otherwise first show on a GPU
machine, in the few minutes a session has there."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests import limits

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location('acceptance_report', os.path.join(REPO_ROOT, 'bench', 'acceptance_report.py'))
acceptance_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(acceptance_report)
TINY = ['--device=cpu', '--res=16', '--cbase=256', '--cmax=16']


def _json_lines(script, *args):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, script, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=limits.seconds(240), check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return [line for line in proc.stdout.splitlines() if line.startswith('{')]


def _measured_the_reference_ops(row):
    return sorted(row['ops']) == ['bias_act', 'upfirdn2d'] and all(path.startswith('reference') for path in row['ops'].values())


@pytest.mark.slow
def test_train_speed_times_each_architecture_and_feeds_the_acceptance_table():
    lines = _json_lines('bench/train_speed.py', '--cfg=paper256', '--g-arch=skip,squeeze', '--batch=4', '--steps=1',
                        '--warmup=1', *TINY)
    rows = [json.loads(line) for line in lines]
    assert [(row['cfg'], row['res'], row['g_arch'], row['batch'], row['steps']) for row in rows] == [
        ('paper256', 16, 'skip', 4, 1), ('paper256', 16, 'squeeze', 4, 1)]
    assert all(row['sec_per_kimg'] > 0 and row['tf32'] is False and _measured_the_reference_ops(row) for row in rows)
    table = acceptance_report.train_table(lines, copy_gbps=None)
    assert len(table) == 4 and table[2].startswith('| paper256 | 16 | skip | none | 4 | ')
    assert '(V100: ' in table[2] and table[3].endswith('|  |')  # The target is paper256 skip's alone.


@pytest.mark.slow
def test_comm_wait_measures_both_modes_over_two_processes():
    rows = [json.loads(line) for line in _json_lines('bench/comm_wait.py', '--processes=2', '--steps=2', '--warmup=1',
                                                     *TINY)]
    assert [(row['mode'], row['processes'], row['steps']) for row in rows] == [('flat', 2, 2), ('overlap', 2, 2)]
    assert all(row['step_s'] > 0 and 0 <= row['wait_s'] and _measured_the_reference_ops(row) for row in rows)
