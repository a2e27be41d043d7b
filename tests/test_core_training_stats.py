"""training_stats: statistics reported by name, collected in one process and reduced across two (gloo)."""

import json
import math
import os

import numpy as np
import pytest
import torch

from tests import core_helpers
from torch_utils import training_stats


def test_collector_gives_count_mean_and_std_of_everything_reported():
    collector = training_stats.Collector(regex='One/basic')
    training_stats.report('One/basic', torch.tensor([1.0, 2.0, 3.0]))
    training_stats.report('One/basic', 4.0)
    training_stats.report('One/basic', np.array([[5.0]]))
    collector.update()
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert collector.num('One/basic') == 5
    assert collector.mean('One/basic') == pytest.approx(values.mean())
    assert collector.std('One/basic') == pytest.approx(values.std())
    assert collector['One/basic'] == pytest.approx(3.0)


def test_report_returns_its_value_unchanged():
    value = torch.tensor([1.5, 2.5], requires_grad=True)
    assert training_stats.report('One/returned', value) is value


def test_collector_only_counts_what_was_reported_since_its_last_update():
    training_stats.report('One/window', 100.0)  # Before the collector exists: not counted.
    collector = training_stats.Collector(regex='One/window')
    training_stats.report('One/window', 1.0)
    collector.update()
    assert (collector.num('One/window'), collector.mean('One/window')) == (1, 1.0)
    training_stats.report('One/window', 3.0)
    training_stats.report('One/window', 5.0)
    collector.update()
    assert (collector.num('One/window'), collector.mean('One/window')) == (2, 4.0)


def test_collectors_with_different_regexes_see_the_same_reports_independently():
    losses = training_stats.Collector(regex='Two/loss/.*')
    everything = training_stats.Collector(regex='Two/.*')
    training_stats.report('Two/loss/G', 1.0)
    training_stats.report('Two/timing', 2.0)
    losses.update()
    everything.update()
    assert losses.names() == ['Two/loss/G']
    assert everything.names() == ['Two/loss/G', 'Two/timing']
    assert everything.mean('Two/loss/G') == 1.0


def test_keep_previous_decides_whether_a_silent_statistic_keeps_its_last_value():
    keeping = training_stats.Collector(regex='Three/x', keep_previous=True)
    dropping = training_stats.Collector(regex='Three/x', keep_previous=False)
    training_stats.report('Three/x', 7.0)
    keeping.update()
    dropping.update()
    keeping.update()
    dropping.update()
    assert keeping.mean('Three/x') == 7.0
    assert math.isnan(dropping.mean('Three/x')) and dropping.num('Three/x') == 0


def test_empty_report_registers_the_name_without_data():
    collector = training_stats.Collector(regex='Four/empty')
    training_stats.report('Four/empty', [])
    collector.update()
    assert collector.names() == ['Four/empty']
    assert collector.num('Four/empty') == 0 and 'Four/empty' not in collector.as_dict()


def test_a_nan_reported_once_does_not_poison_later_intervals():
    name = 'Test/nan_once'
    collector = training_stats.Collector(regex=name, keep_previous=False)
    later = training_stats.Collector(regex=name, keep_previous=False)  # Created before the NaN as well.
    training_stats.report(name, [float('nan'), 1.0])
    collector.update()
    assert math.isnan(collector.mean(name))
    training_stats.report(name, [2.0, 4.0])
    collector.update()
    later.update()  # Saw both intervals since its last update: NaN as well, and only this once.
    assert collector.num(name) == 2 and collector.mean(name) == 3.0
    assert math.isnan(later.mean(name))
    training_stats.report(name, [5.0])
    later.update()
    assert later.mean(name) == 5.0


def test_as_dict_holds_num_mean_std_per_statistic():
    collector = training_stats.Collector(regex='Five/.*')
    training_stats.report('Five/a', [2.0, 4.0])
    collector.update()
    stats = collector.as_dict()
    assert stats == {'Five/a': {'num': 2, 'mean': 3.0, 'std': 1.0}}
    assert stats['Five/a'].mean == 3.0  # EasyDicts, for attribute access in the training loop.
    assert isinstance(stats['Five/a'].num, int)  # stats.jsonl shows counts as integers.


@pytest.fixture(scope='module')
def two_rank_results(tmp_path_factory):
    """What each of two gloo ranks (spawned once for this module) saw."""
    folder = tmp_path_factory.mktemp('two_ranks')
    torch.multiprocessing.spawn(core_helpers.two_rank_worker, nprocs=2, join=True,
                                args=(2, str(folder / 'init'), str(folder)))
    return [json.load(open(os.path.join(folder, f'rank{rank}.json'))) for rank in range(2)]


def test_two_processes_reduce_their_reports_over_gloo(two_rank_results):
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    for result in two_rank_results:
        # Both ranks see the statistic over all five values, not only their own.
        stats = result['stats']['Test/value']
        assert stats['num'] == 5
        assert stats['mean'] == pytest.approx(values.mean())
        assert stats['std'] == pytest.approx(values.std())


def test_report0_counts_only_rank_0_across_processes(two_rank_results):
    for result in two_rank_results:
        assert result['stats']['Test/rank0_only'] == {'num': 1, 'mean': 10.0, 'std': 0.0}


def test_check_ddp_consistency_flags_the_rank_whose_parameters_differ(two_rank_results):
    # Identical modules passed on both ranks (the worker would have failed otherwise); after rank 1
    # changed its bias, rank 1 reports the difference by name.
    assert two_rank_results[0]['ddp_error'] is None
    assert 'Linear.bias differs between rank 0 and rank 1' in two_rank_results[1]['ddp_error']


@pytest.mark.gpu
def test_cuda_reports_are_collected():
    collector = training_stats.Collector(regex='Gpu/x')
    training_stats.report('Gpu/x', torch.tensor([1.0, 3.0], device='cuda'))
    collector.update()
    assert (collector.num('Gpu/x'), collector.mean('Gpu/x')) == (2, 2.0)
