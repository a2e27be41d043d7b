"""Flake hunts: run a tiny 2-process CPU training N times, or one pytest node N times, and count what failed.

    python scripts/repeat_runs.py --runs=50                        # 50 `train.py --gpus=2 --device=cpu` runs
    python scripts/repeat_runs.py --runs=30 --pytest=tests/test_train_preemption.py::test_spawned_ranks_receive_the_signal_agree_and_exit_with_the_parent

Each failure prints its exit status and the last lines of its output; the script exits 1 when any run failed.
The training runs use a fresh image folder of 8 random 16x16 images and a 12-step run (batch 4).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

TRAIN_ARGS = ['--cfg=auto', '--cbase=512', '--cmax=32', '--map=2', '--batch=4', '--metrics=none', '--aug=noaug',
              '--device=cpu', '--workers=0', '--tick=0.016', '--kimg=0.048', '--snap=1', '--fp32', '--gpus=2']


def _train_commands(workdir, runs):
    from tests.train_helpers import write_image_folder  # pylint: disable=import-outside-toplevel
    data = write_image_folder(os.path.join(workdir, 'tiny16'), num_images=8, resolution=16)
    for index in range(runs):
        yield [sys.executable, 'train.py', f'--outdir={os.path.join(workdir, f"runs{index:03d}")}', f'--data={data}',
               *TRAIN_ARGS]


def _pytest_commands(node, runs):
    for _ in range(runs):
        yield [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', node]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=50, help='How many times to run [default: 50]')
    parser.add_argument('--pytest', metavar='NODE', help='Run this pytest node instead of a training run')
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS='1')
    failures = 0
    start = time.time()
    with tempfile.TemporaryDirectory() as workdir:
        commands = _pytest_commands(args.pytest, args.runs) if args.pytest else _train_commands(workdir, args.runs)
        for index, command in enumerate(commands):
            result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
            ok = result.returncode == 0 and 'terminate called' not in result.stdout + result.stderr
            failures += not ok
            print(f'run {index + 1}/{args.runs}: {"ok" if ok else f"FAILED (exit {result.returncode})"}', flush=True)
            if not ok:
                print((result.stdout + result.stderr)[-2000:], flush=True)
    what = f'pytest {args.pytest}' if args.pytest else '2-process training runs'
    print(f'{args.runs - failures} of {args.runs} {what} passed in {time.time() - start:.0f} s')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
