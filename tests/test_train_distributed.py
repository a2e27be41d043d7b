"""Distributed training on CPU: two gloo processes started by torchrun (env:// rendezvous) train one run."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from tests.train_helpers import TINY_ARGS, final_snapshot_tensors, write_image_folder
from tests import limits

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_two_process_gloo_run_under_torchrun(tmp_path):
    data = write_image_folder(tmp_path / 'tiny16', num_images=8, resolution=16)
    script = tmp_path / 'tiny_train.py'
    script.write_text(textwrap.dedent(f'''
        import os, sys
        sys.path.insert(0, {REPO_ROOT!r})
        from tests.train_helpers import tiny_config
        from training.cli import launch as train_launch
        config = tiny_config({str(tmp_path / 'runs')!r}, {data!r}, env=os.environ, kimg=0.008, tick=0.004)
        train_launch.start(config)
    '''))
    (tmp_path / 'tmp').mkdir()  # torchrun's agent leaves a torchelastic_* folder in TMPDIR.
    env = dict(os.environ, OMP_NUM_THREADS='1', TMPDIR=str(tmp_path / 'tmp'))
    result = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node=2',
                             str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=limits.seconds(300))
    assert result.returncode == 0, result.stderr[-3000:]
    runs = os.listdir(tmp_path / 'runs')
    assert len(runs) == 1 and runs[0].startswith('00000-tiny16-auto2-skip')  # Rank 0 alone made a run directory.
    run_dir = tmp_path / 'runs' / runs[0]
    options = json.loads((run_dir / 'training_options.json').read_text())
    assert options['num_processes'] == 2 and options['batch_gpu'] == 2
    ticks = [json.loads(line) for line in (run_dir / 'stats.jsonl').read_text().splitlines()]
    assert ticks[-1]['Progress/kimg']['mean'] == pytest.approx(0.008)
    # Losses are reduced over both ranks: each rank's 2 samples per step count in the tick's statistics.
    assert ticks[-1]['Loss/G/loss']['num'] == 4
    assert (run_dir / 'network-snapshot-000000.pkl').is_file() and (run_dir / 'network-snapshot-000000.resume.pt').is_file()


@pytest.mark.slow
def test_two_process_run_resumes_bit_exactly_with_each_ranks_own_state(tmp_path):
    # Each rank keeps its own path-length mean and w_avg (from its half of the batch); a resume that gave
    # every rank rank 0's would change rank 1's path-length gradients from the next G regularisation step
    # (steps 0 and 4 of 8 here), and so the averaged weights.
    data = write_image_folder(tmp_path / 'tiny16', num_images=8, resolution=16)

    def train(outdir, kimg, *extra):
        command = [sys.executable, 'train.py', f'--outdir={outdir}', f'--data={data}', *TINY_ARGS, '--aug=ada', '--augpipe=bgc', '--gpus=2',
                   '--tick=0.008', f'--kimg={kimg}', *extra]
        result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=limits.seconds(300),
                                env=dict(os.environ, OMP_NUM_THREADS='1'))
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        return result.stdout

    train(tmp_path / 'a', 0.032)
    train(tmp_path / 'b', 0.016)
    log = train(tmp_path / 'b', 0.032, '--resume=latest')
    assert 'exact resume: kimg 0.016' in log and 'RNG states not restored' not in log
    expected = final_snapshot_tensors(tmp_path / 'a' / os.listdir(tmp_path / 'a')[0])
    actual = final_snapshot_tensors(tmp_path / 'b' / sorted(os.listdir(tmp_path / 'b'))[-1])
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    run_a = tmp_path / 'a' / os.listdir(tmp_path / 'a')[0]
    state = torch.load(run_a / 'network-snapshot-000000.resume.pt', weights_only=True)
    pl_means = [rank['loss']['pl_mean'] for rank in state['ranks']]
    assert len(pl_means) == 2 and not torch.equal(*pl_means)  # The ranks' states really differ.
