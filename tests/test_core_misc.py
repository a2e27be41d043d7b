"""torch_utils.misc: parameter copying, the infinite sampler, constants, shape checks and module summaries."""

import itertools

import pytest
import torch

from torch_utils import misc


def _first(sampler, count):
    return list(itertools.islice(iter(sampler), count))


def _net(width=3):
    torch.manual_seed(width)
    net = torch.nn.Sequential(torch.nn.Linear(2, width), torch.nn.BatchNorm1d(width))
    net[1].running_mean.normal_()
    return net


def test_copy_params_and_buffers_copies_every_matching_tensor():
    src, dst = _net(), _net()
    dst[0].weight.requires_grad_(False)
    misc.copy_params_and_buffers(src, dst)
    for (name, a), (_, b) in zip(misc.named_params_and_buffers(src), misc.named_params_and_buffers(dst)):
        assert torch.equal(a, b), name
    assert not dst[0].weight.requires_grad  # The destination keeps its own requires_grad.


def test_copy_params_and_buffers_skips_names_the_source_lacks_unless_all_are_required():
    src = torch.nn.Sequential(torch.nn.Linear(2, 3))
    dst = _net()
    before = dst[1].running_mean.clone()
    misc.copy_params_and_buffers(src, dst)
    assert torch.equal(dst[0].weight, src[0].weight)
    assert torch.equal(dst[1].running_mean, before)
    with pytest.raises(KeyError, match='1.weight'):
        misc.copy_params_and_buffers(src, dst, require_all=True)


def test_copy_params_and_buffers_names_a_shape_mismatch():
    with pytest.raises(ValueError, match='"0.weight" has shape \\[4, 2\\] in the source but \\[3, 2\\]'):
        misc.copy_params_and_buffers(_net(4), _net(3))


def test_named_params_and_buffers_lists_both_kinds():
    names = [name for name, _ in misc.named_params_and_buffers(_net())]
    assert names == ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var',
                     '1.num_batches_tracked']
    assert len(misc.params_and_buffers(_net())) == len(names)


def test_infinite_sampler_is_deterministic_for_a_seed_and_differs_between_seeds():
    dataset = range(10)
    a = _first(misc.InfiniteSampler(dataset, seed=1), 40)
    b = _first(misc.InfiniteSampler(dataset, seed=1), 40)
    c = _first(misc.InfiniteSampler(dataset, seed=2), 40)
    assert a == b and a != c
    assert set(a) == set(range(10))  # Every item is drawn.


def test_infinite_sampler_without_shuffle_cycles_in_order():
    assert _first(misc.InfiniteSampler(range(4), shuffle=False), 10) == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]


def test_infinite_sampler_shards_one_shared_sequence_between_ranks():
    dataset = range(12)
    shared = _first(misc.InfiniteSampler(dataset, seed=3), 60)
    shards = [_first(misc.InfiniteSampler(dataset, rank=r, num_replicas=3, seed=3), 20) for r in range(3)]
    for rank, shard in enumerate(shards):
        assert shard == shared[rank::3]
    assert set(itertools.chain(*shards)) == set(range(12))  # Together the ranks cover the dataset.


def test_infinite_sampler_start_index_resumes_the_same_sequence():
    dataset = range(7)
    full = _first(misc.InfiniteSampler(dataset, rank=1, num_replicas=2, seed=5), 30)
    resumed = _first(misc.InfiniteSampler(dataset, rank=1, num_replicas=2, seed=5, start_index=20), 20)
    assert resumed == full[10:]


def test_infinite_sampler_rejects_bad_settings():
    with pytest.raises(ValueError, match='empty'):
        misc.InfiniteSampler([])
    with pytest.raises(ValueError, match='rank 2 is not in \\[0, 2\\)'):
        misc.InfiniteSampler(range(3), rank=2, num_replicas=2)


def test_constant_is_cached_per_value_shape_and_dtype():
    a = misc.constant([1.0, 2.0])
    assert misc.constant([1.0, 2.0]) is a
    assert misc.constant([1.0, 2.0], dtype=torch.float64) is not a
    assert misc.constant(0.5, shape=[2, 3]).shape == (2, 3)


def test_assert_shape_accepts_wildcards_and_names_the_wrong_dimension():
    x = torch.zeros(2, 3, 4)
    misc.assert_shape(x, [None, 3, 4])
    with pytest.raises(AssertionError, match='dimension 1: got 3, expected 5'):
        misc.assert_shape(x, [None, 5, 4])
    with pytest.raises(AssertionError, match='number of dimensions'):
        misc.assert_shape(x, [2, 3])


class _OpensAFile:
    def __reduce__(self):
        return (open, ('never-created', 'w'))


def test_torch_load_reason_names_the_global_a_weights_only_load_refused(tmp_path):
    torch.save({'x': _OpensAFile()}, tmp_path / 'evil.pt')
    with pytest.raises(Exception) as info:
        torch.load(tmp_path / 'evil.pt', weights_only=True)
    assert misc.torch_load_reason(info.value).startswith('refusing to load io.open')
    (tmp_path / 'text.pt').write_text('not a torch file')
    with pytest.raises(Exception) as info:
        torch.load(tmp_path / 'text.pt', weights_only=True)
    assert misc.torch_load_reason(info.value) == 'damaged, or not a file of tensors and plain values'


def test_set_tf32_sets_both_switches_and_returns_the_previous_pair():
    previous = misc.set_tf32((True, False))
    try:
        assert misc.set_tf32(False) == (True, False)
        assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (False, False)
        assert misc.set_tf32(1) == (False, False)
        assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (True, True)
        assert misc.set_tf32((True, False)) == (True, True)  # A returned pair puts both back.
        assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (True, False)
    finally:
        misc.set_tf32(previous)
