"""CUDA checks for the objective: AugmentPipe on the GPU ops matches the CPU reference; loss and ADA run on CUDA."""

import pytest
import torch

from torch_utils import training_stats
from training.augment.ada import AdaController
from training.augment import AugmentPipe, augpipe_specs
from training.loss import StyleGAN2Loss
from tests import objective_helpers as helpers

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize('spec', ['bg', 'bgcf'])
def test_augment_pipe_on_cuda_matches_cpu(spec, measured):
    pipe = AugmentPipe(**augpipe_specs[spec])
    x = torch.rand([4, 3, 32, 32]) * 2 - 1
    on_cpu = pipe(x, debug_percentile=0.7)
    on_gpu = pipe.cuda()(x.cuda(), debug_percentile=0.7).cpu()
    assert measured('max |CUDA - CPU|, pixels in [-1, 1]', (on_cpu - on_gpu).abs().max(), 1e-3) < 1e-3


def test_loss_phases_run_on_cuda():
    torch.manual_seed(0)
    G, D = helpers.TinyG().cuda(), helpers.TinyD().cuda()
    pipe = AugmentPipe(**augpipe_specs['bgc']).cuda()
    loss = StyleGAN2Loss('cuda', G, D, augment_pipe=pipe)
    data = [t.cuda() for t in helpers.batch(G)]
    for phase in ('Gboth', 'Dboth'):
        loss.accumulate_gradients(phase, *data, gain=1, cur_nimg=0)
    assert all(torch.isfinite(p.grad).all() for p in D.parameters())
    assert loss.pl_mean.is_cuda and float(loss.pl_mean) > 0
    assert loss.state_dict()['pl_mean'].device.type == 'cpu'


def test_ada_controller_sets_p_of_a_cuda_pipe():
    pipe = AugmentPipe(xflip=1).cuda()
    ada = AdaController(pipe, p=0.5, target=0.6, interval=1, ada_kimg=1, batch_size=100)
    training_stats.report('Loss/signs/real', torch.ones([4], device='cuda'))
    ada.step()
    assert float(pipe.p) == pytest.approx(0.6) and pipe.p.is_cuda
