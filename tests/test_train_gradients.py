"""GradientReducer: gradients averaged over ranks in buckets started during backward; 2 processes = 1 process."""

import os

import pytest
import torch

from tests import regularizer_helpers
from training.loss import StyleGAN2Loss
from training.networks import Discriminator, Generator
from training.run.gradients import GradientReducer, _make_buckets

PHASES = ('Gmain', 'Dmain', 'Dreg')


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
# One optimizer step of three phases, split over two gloo processes or not.

def _networks():
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                  synthesis_kwargs=dict(regularizer_helpers.TINY_CHANNELS, architecture='squeeze', squeeze_ratio=4,
                                        use_noise=False))
    D = Discriminator(c_dim=0, img_resolution=16, img_channels=3, decoder_res=8,
                      epilogue_kwargs=dict(mbstd_group_size=1), **regularizer_helpers.TINY_CHANNELS)
    return G.train().requires_grad_(False), D.train().requires_grad_(False)


def _train_step(rank, num_processes):
    """Weights of G and D after one SGD step of each phase on this rank's share of a fixed batch of 4."""
    G, D = _networks()
    # No random draws that depend on the batch split: no style mixing, no path length, no noise inputs.
    loss = StyleGAN2Loss('cpu', G, D, style_mixing_prob=0, pl_weight=0, r1_gamma=1,
                         extra_terms=[dict(class_name='training.regularizers.GGDRLoss', resolution=8)])
    generator = torch.Generator().manual_seed(1)
    real, z = torch.rand([4, 3, 16, 16], generator=generator) * 2 - 1, torch.randn([4, 8], generator=generator)
    share = slice(rank * 4 // num_processes, (rank + 1) * 4 // num_processes)
    started = 0
    for phase in PHASES:
        module = G if phase.startswith('G') else D
        module.requires_grad_(True)
        reducer = GradientReducer(module, num_processes, bucket_mb=0.001)  # Many small buckets.
        optimizer = torch.optim.SGD(module.parameters(), lr=0.01)  # Adam's first step is ~sign(grad): it would magnify rounding.
        loss.accumulate_gradients(phase, real[share], torch.zeros([4 // num_processes, 0]), z[share],
                                  torch.zeros([4 // num_processes, 0]), gain=1, cur_nimg=0, before_last_backward=reducer.arm)
        reducer.finish()
        optimizer.step()
        started += reducer.started_in_backward
        reducer.close()
        module.requires_grad_(False)
    return {**{f'G.{k}': v for k, v in G.state_dict().items()}, **{f'D.{k}': v for k, v in D.state_dict().items()}}, started


def _two_process_worker(rank, init_file, out_dir):
    torch.set_num_threads(1)
    torch.distributed.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=2)
    weights, started = _train_step(rank, 2)
    torch.save(dict(weights=weights, started=started), os.path.join(out_dir, f'rank{rank}.pt'))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_processes_end_with_the_weights_of_one_process_on_the_whole_batch(tmp_path):
    torch.multiprocessing.start_processes(_two_process_worker, args=(str(tmp_path / 'init'), str(tmp_path)), nprocs=2,
                                          start_method='spawn')
    ranks = [torch.load(tmp_path / f'rank{rank}.pt', weights_only=True) for rank in range(2)]
    expected, _started = _train_step(0, 1)
    assert all(rank['started'] > 0 for rank in ranks)  # Buckets were sent while backward still ran.
    for name, value in expected.items():
        if name.endswith('w_avg'):  # A running average each rank keeps over its own samples (saved per rank).
            continue
        for rank in ranks:
            assert torch.allclose(rank['weights'][name], value, rtol=1e-5, atol=1e-6), name
    assert any(not torch.equal(expected[name], _networks()[0].state_dict()[name[2:]])
               for name in expected if name.startswith('G.'))  # The step changed something.


def test_finish_without_arm_still_cleans_every_gradient():
    module = torch.nn.Linear(2, 2)
    reducer = GradientReducer(module, num_processes=1)
    for _ in range(2):  # Twice: the second cycle must not reuse the first one's state.
        module.weight.grad = torch.full([2, 2], float('nan'))
        reducer.finish()
        assert module.weight.grad.tolist() == [[0.0, 0.0], [0.0, 0.0]]
