"""The training loop end to end on CPU: the run directory it writes, and exact resume from a snapshot."""

import json
import os
import pickle

import pytest
import torch

from tests.train_helpers import final_snapshot_tensors, tiny_config, write_image_folder
from training.cli import launch as train_launch
from training.run.resume import ResumeError




@pytest.fixture(scope='module')
def data16(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp('data') / 'tiny16', num_images=8, resolution=16)


def test_tiny_run_writes_the_whole_run_directory(tmp_path, data16):
    config = tiny_config(tmp_path / 'runs', data16, kimg=0.012, tick=0.008)
    run_dir = train_launch.start(config, env={})
    files = set(os.listdir(run_dir))
    assert {'training_options.json', 'log.txt', 'stats.jsonl', 'reals.png', 'fakes_init.png', 'fakes000000.png',
            'network-snapshot-000000.pkl', 'network-snapshot-000000.resume.pt'} <= files
    assert any(f.startswith('events.out.tfevents') for f in files)
    assert not any(f.endswith('.tmp') for f in files)
    ticks = [json.loads(line) for line in open(os.path.join(run_dir, 'stats.jsonl'))]
    assert [t['Progress/kimg']['mean'] for t in ticks] == pytest.approx([0.004, 0.012])
    for name in ('Progress/tick', 'Progress/augment', 'Timing/sec_per_kimg', 'Timing/sec_per_tick', 'Loss/G/loss',
                 'Loss/D/loss', 'Resources/cpu_mem_gb'):
        assert name in ticks[-1]
    with open(os.path.join(run_dir, 'network-snapshot-000000.pkl'), 'rb') as f:
        snapshot = pickle.load(f)
    assert set(snapshot) == {'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}
    assert snapshot['training_set_kwargs']['path'] == data16 and snapshot['augment_pipe'] is None
    assert not any(p.requires_grad for p in snapshot['G_ema'].parameters())
    log = open(os.path.join(run_dir, 'log.txt')).read()
    assert 'tick 1 ' in log and 'sec/kimg' in log and 'augment' in log


def test_a_dataset_that_names_its_classes_passes_the_names_to_the_snapshot(tmp_path):
    data = write_image_folder(tmp_path / 'named', num_images=4, labels=[0, 1], class_names=['zero', 'one'])
    run_dir = train_launch.start(tiny_config(tmp_path / 'runs', data, kimg=0.004, cond=True), env={})
    with open(os.path.join(run_dir, 'network-snapshot-000000.pkl'), 'rb') as f:
        snapshot = pickle.load(f)
    assert snapshot['class_names'] == ['zero', 'one'] and snapshot['G_ema'].c_dim == 2


def test_second_run_gets_a_new_directory(tmp_path, data16):
    config = tiny_config(tmp_path / 'runs', data16, kimg=0.004)
    first = train_launch.start(config, env={})
    second = train_launch.start(config, env={})
    assert os.path.basename(first).startswith('00000-') and os.path.basename(second).startswith('00001-')


def test_stopped_and_resumed_run_ends_bit_identical_to_an_uninterrupted_one(tmp_path, data16):
    # ADA with a fast controller so that p (and the augmentations' random draws) change within a few steps;
    # the stop falls mid ADA interval (batch 3 of 4), so the ADA accumulator has to survive the resume too.
    def config_for(outdir, **overrides):
        config = tiny_config(outdir, data16, aug='ada', augpipe='bgc', tick=0.008, **overrides)
        config.ada_kimg = 0.05   # p moves by 0.32 at every ADA update (every 4 steps)...
        config.augment_p = 0.5   # ...up or down from here, either way inside [0, 1].
        return config
    uninterrupted = train_launch.start(config_for(tmp_path / 'a', kimg=0.016), env={})
    stopped = train_launch.start(config_for(tmp_path / 'b', kimg=0.012), env={})
    resumed = train_launch.start(config_for(tmp_path / 'b', kimg=0.016, resume='latest'), env={})
    assert os.path.dirname(resumed) == os.path.dirname(stopped) and resumed != stopped

    expected, actual = final_snapshot_tensors(uninterrupted), final_snapshot_tensors(resumed)
    assert expected['augment_p'] != 0.5
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    ticks_a = [json.loads(line) for line in open(os.path.join(uninterrupted, 'stats.jsonl'))]
    ticks_b = [json.loads(line) for line in open(os.path.join(resumed, 'stats.jsonl'))]
    assert [t['Progress/tick']['mean'] for t in ticks_a[-1:]] == [t['Progress/tick']['mean'] for t in ticks_b] == [2]
    # The last step's losses agree (up to how the statistics collector sums them over different histories).
    for name in ('Loss/G/loss', 'Loss/D/loss', 'Loss/signs/real'):
        assert ticks_a[-1][name]['num'] == ticks_b[-1][name]['num']
        assert ticks_a[-1][name]['mean'] == pytest.approx(ticks_b[-1][name]['mean'], rel=1e-9, abs=1e-12)
    assert 'exact resume: kimg 0.012, tick 2' in open(os.path.join(resumed, 'log.txt')).read()


def test_metrics_run_on_each_snapshot_into_metric_jsonl(tmp_path, data16, monkeypatch):
    from tests.metrics_helpers import write_detector_dir
    monkeypatch.setenv('SQUEEZEGAN_DETECTOR_DIR', write_detector_dir(tmp_path / 'detectors'))
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    config = tiny_config(tmp_path / 'runs', data16, kimg=0.004, metrics='fid1k_full')
    run_dir = train_launch.start(config, env={})
    lines = [json.loads(line) for line in open(os.path.join(run_dir, 'metric-fid1k_full.jsonl'))]
    assert len(lines) == 1 and lines[0]['snapshot_pkl'] == 'network-snapshot-000000.pkl'
    assert lines[0]['results']['fid1k_full'] > 0
    ticks = [json.loads(line) for line in open(os.path.join(run_dir, 'stats.jsonl'))]
    assert len(ticks) == 1


def test_resume_into_another_architecture_transfers_matching_weights(tmp_path, data16):
    skip_run = train_launch.start(tiny_config(tmp_path / 'runs', data16, kimg=0.004), env={})
    snapshot = os.path.join(skip_run, 'network-snapshot-000000.pkl')
    config = tiny_config(tmp_path / 'runs', data16, kimg=0.004, g_arch='squeeze', resume=snapshot)
    with pytest.raises(ResumeError, match=r'networks differ from the configured ones, only some tensors match '
                                          r'\(G \d+/\d+, D \d+/\d+, G_ema \d+/\d+\); pass --transfer'):
        train_launch.start(config, env={})
    squeeze_run = train_launch.start(dict(config, allow_transfer=True), env={})
    log = open(os.path.join(squeeze_run, 'log.txt')).read()
    assert 'Resume state not used (G_kwargs differ' in log
    assert 'transferred tensors (matching / all): G ' in log and 'the others keep their fresh initialisation' in log
    assert 'G: transferred' in log and 'D: transferred 0' not in log
    with open(os.path.join(squeeze_run, 'network-snapshot-000000.pkl'), 'rb') as f:
        assert pickle.load(f)['G'].synthesis.b8.architecture == 'squeeze'
