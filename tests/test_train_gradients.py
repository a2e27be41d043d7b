"""GradientReducer: gradients averaged over ranks in buckets started during backward; 2 processes = 1 process."""

import os

import pytest
import torch

from tests import regularizer_helpers
from tests.metrics_helpers import write_lpips_weight_dir
from training.loss import StyleGAN2Loss
from training.networks import Discriminator
from training.run.gradients import GradientReducer, _make_buckets


def test_buckets_keep_order_and_size():
    params = [torch.nn.Parameter(torch.zeros(n)) for n in (10, 10, 300, 5)]
    buckets = _make_buckets(params, cap_bytes=100)  # 25 floats per bucket.
    assert [[p.numel() for p in bucket] for bucket in buckets] == [[10, 10], [300], [5]]


def test_single_process_finish_replaces_non_finite_values_and_keeps_missing_gradients_missing():
    module = torch.nn.Linear(2, 2)
    module.weight.grad = torch.tensor([[float('nan'), 1.0], [float('inf'), -float('inf')]])
    reducer = GradientReducer(module, num_processes=1)
    reducer.arm()
    reducer.finish()
    assert module.weight.grad.tolist() == [[0.0, 1.0], [1e5, -1e5]] and module.bias.grad is None

#----------------------------------------------------------------------------
# Tiny networks for every D regulariser, and the phases' steps.

def _networks(reg_type):
    G = regularizer_helpers.tiny_G('squeeze', use_noise=False)
    decoder = dict(decoder_res=8) if reg_type != 'none' else dict(decoder_res=None)
    if reg_type == 'glead':
        decoder['glead_kwargs'] = dict(feature_channels=32, w_dim=8)
    torch.manual_seed(1)
    D = Discriminator(c_dim=0, img_resolution=16, img_channels=3, epilogue_kwargs=dict(mbstd_group_size=1),
                      **decoder, **regularizer_helpers.TINY_CHANNELS)
    return G.train().requires_grad_(False), D.train().requires_grad_(False)


def _loss(G, D, reg_type, lpips_dir=None, pl_weight=0):
    terms = []
    if reg_type == 'ggdr':
        terms = [dict(class_name='training.regularizers.GGDRLoss', resolution=8, weight=10)]
    if reg_type == 'glead':
        common = dict(class_name='training.regularizers.GLeaDLoss', feature_res=8, detector_dir=lpips_dir)
        terms = [dict(common, branch='real', weight=10), dict(common, branch='image', weight=3)]
    # No random draws that depend on the batch split: no style mixing, no noise inputs (path length only when asked).
    return StyleGAN2Loss('cpu', G, D, style_mixing_prob=0, pl_weight=pl_weight, r1_gamma=1, extra_terms=terms)


def _batch(rank=0, num_processes=1):
    generator = torch.Generator().manual_seed(1)
    real, z = torch.rand([4, 3, 16, 16], generator=generator) * 2 - 1, torch.randn([4, 8], generator=generator)
    share = slice(rank * 4 // num_processes, (rank + 1) * 4 // num_processes)
    empty = torch.zeros([4 // num_processes, 0])
    return real[share], empty, z[share], empty


def _step(loss, phase, reducer, batch, optimizer=None):
    module = loss.G if phase.startswith('G') else loss.D
    module.requires_grad_(True)
    module.zero_grad(set_to_none=True)
    loss.accumulate_gradients(phase, *batch, gain=1, cur_nimg=0, before_last_backward=reducer.arm)
    reducer.finish()
    if optimizer is not None:
        optimizer.step()
    module.requires_grad_(False)


@pytest.fixture(scope='module')
def lpips_dir(tmp_path_factory):
    return write_lpips_weight_dir(tmp_path_factory.mktemp('lpips'))[0]


class _EchoPeer:
    """Stands in for torch.distributed with one identical peer: all_reduce doubles, broadcast keeps rank 0's."""

    def __init__(self, monkeypatch):
        self.calls = []  # Elements of each all-reduce, in order.
        monkeypatch.setattr(torch.distributed, 'all_reduce', self.all_reduce)
        monkeypatch.setattr(torch.distributed, 'broadcast', lambda tensor, src: None)

    def all_reduce(self, tensor, async_op=False):
        self.calls.append(tensor.numel())
        tensor.mul_(2)
        return _Done()


class _Done:
    def wait(self):
        return True

#----------------------------------------------------------------------------

@pytest.mark.parametrize('reg_type', ['none', 'ggdr', 'glead'])
@pytest.mark.parametrize('phase', ['Gmain', 'Greg', 'Dmain', 'Dreg'])
def test_after_the_first_step_each_phase_sends_its_first_bucket_while_backward_runs(monkeypatch, lpips_dir, phase,
                                                                                     reg_type):
    _EchoPeer(monkeypatch)
    G, D = _networks(reg_type)
    loss = _loss(G, D, reg_type, lpips_dir, pl_weight=2)
    module = G if phase.startswith('G') else D
    reducer = GradientReducer(module, num_processes=2, bucket_mb=0.001)  # Many small buckets.
    _step(loss, phase, reducer, _batch())
    assert reducer.order_learned and reducer.started_in_backward == 0  # The first step only watches.
    pl_mean = loss.pl_mean.clone()
    torch.manual_seed(5)  # The same path-length noise in both runs of the second step.
    _step(loss, phase, GradientReducer(module, num_processes=1), _batch())
    expected = {name: param.grad.clone() for name, param in module.named_parameters() if param.grad is not None}
    loss.pl_mean.copy_(pl_mean)
    torch.manual_seed(5)
    _step(loss, phase, reducer, _batch())
    assert reducer.started_in_backward > 0
    assert reducer.first_bucket_lead > 0  # Gradients still arrived after the first bucket went out.
    for name, param in module.named_parameters():  # Averaging with an identical peer changes nothing.
        assert (param.grad is None) == (name not in expected), name
        if param.grad is not None:
            assert torch.equal(param.grad, expected[name]), name
    reducer.close()


def test_ggdr_decoder_gradients_are_sent_before_the_real_pass_begins(monkeypatch):
    # GGDR's decoder is trained in Dmain's fake pass only; registered last, it used to sit in the first bucket,
    # which then waited for the whole real-image backward. Now what the fake pass finished goes out at arm().
    peer = _EchoPeer(monkeypatch)
    G, D = _networks('ggdr')
    loss = _loss(G, D, 'ggdr')
    reducer = GradientReducer(D, num_processes=2, bucket_mb=0.001)
    _step(loss, 'Dmain', reducer, _batch())
    decoder = {id(param) for param in D.decoder.parameters()}
    assert all(id(param) in decoder for param in reducer.buckets[0])
    sent_at_arm = []
    arm = reducer.arm
    reducer.arm = lambda: (arm(), sent_at_arm.append(reducer.started_in_backward))
    peer.calls.clear()
    _step(loss, 'Dmain', reducer, _batch())
    assert sent_at_arm[0] > 0 and peer.calls[0] == sum(p.numel() for p in reducer.buckets[0] if p.grad is not None)


def _train_steps(rank, num_processes, reg_type, lpips_dir):
    """Weights of G and D after two SGD steps of each phase on this rank's share of a fixed batch of 4, and how many
    buckets went out during backward."""
    G, D = _networks(reg_type)
    loss = _loss(G, D, reg_type, lpips_dir)
    started = {}
    for phase in ('Gmain', 'Dmain', 'Dreg'):
        module = G if phase.startswith('G') else D
        reducer = GradientReducer(module, num_processes, bucket_mb=0.001)
        optimizer = torch.optim.SGD(module.parameters(), lr=0.01)  # Adam's first step is ~sign(grad): it would magnify rounding.
        for _ in range(2):  # The first learns the bucket order, the second overlaps.
            _step(loss, phase, reducer, _batch(rank, num_processes), optimizer)
        started[phase] = reducer.started_in_backward
        reducer.close()
    return {**{f'G.{k}': v for k, v in G.state_dict().items()}, **{f'D.{k}': v for k, v in D.state_dict().items()}}, started


def _two_process_worker(rank, init_file, out_dir, reg_type, lpips_dir):
    torch.set_num_threads(1)
    torch.distributed.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=2)
    weights, started = _train_steps(rank, 2, reg_type, lpips_dir)
    torch.save(dict(weights=weights, started=started), os.path.join(out_dir, f'rank{rank}.pt'))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize('reg_type', ['ggdr', 'glead'])
def test_two_processes_end_with_the_weights_of_one_process_on_the_whole_batch(tmp_path, lpips_dir, reg_type):
    torch.multiprocessing.start_processes(_two_process_worker, args=(str(tmp_path / 'init'), str(tmp_path), reg_type,
                                                                     lpips_dir), nprocs=2, start_method='spawn')
    ranks = [torch.load(tmp_path / f'rank{rank}.pt', weights_only=True) for rank in range(2)]
    expected, _started = _train_steps(0, 1, reg_type, lpips_dir)
    assert all(count > 0 for rank in ranks for count in rank['started'].values())  # Every phase overlapped.
    for name, value in expected.items():
        if name.endswith('w_avg'):  # A running average each rank keeps over its own samples (saved per rank).
            continue
        for rank in ranks:
            assert torch.allclose(rank['weights'][name], value, rtol=1e-5, atol=1e-6), name
    assert any(not torch.equal(expected[name], _networks(reg_type)[0].state_dict()[name[2:]])
               for name in expected if name.startswith('G.'))  # The steps changed something.


def test_finish_without_arm_still_cleans_every_gradient():
    module = torch.nn.Linear(2, 2)
    reducer = GradientReducer(module, num_processes=1)
    for _ in range(2):  # Twice: the second cycle must not reuse the first one's state.
        module.weight.grad = torch.full([2, 2], float('nan'))
        reducer.finish()
        assert module.weight.grad.tolist() == [[0.0, 0.0], [0.0, 0.0]]


@pytest.mark.parametrize('overlap', [False, True])
def test_every_arm_and_finish_cycle_averages_and_cleans_again(monkeypatch, overlap):
    peer = _EchoPeer(monkeypatch)
    module = torch.nn.Linear(2, 2)
    reducer = GradientReducer(module, num_processes=2, overlap=overlap)
    for cycle in range(3):  # The first cycle learns the bucket order (overlap); every one must send everything.
        module.weight.grad = torch.tensor([[float('nan'), 1.0], [2.0, float('inf')]])
        module.bias.grad = torch.tensor([3.0, -4.0])
        peer.calls.clear()
        reducer.arm()
        reducer.finish()
        assert sum(peer.calls) == 6, cycle
        assert module.weight.grad.tolist() == [[0.0, 1.0], [2.0, 1e5]] and module.bias.grad.tolist() == [3.0, -4.0]
