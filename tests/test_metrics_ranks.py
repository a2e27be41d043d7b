"""Metrics split across two CPU ranks (gloo): same dataset features as one rank, same results on every rank."""

import os

import numpy as np
import pytest
import torch

from metrics import detectors
from metrics import metric_main
from metrics import metric_utils
from tests import metrics_helpers as helpers


def _two_rank_worker(rank, init_file, dataset_kwargs, detector_dir, out_dir):
    torch.distributed.init_process_group(backend='gloo', init_method=f'file://{init_file}', rank=rank, world_size=2)
    try:
        torch.set_num_threads(1)
        common = dict(G=helpers.StandInGenerator(), dataset_kwargs=dataset_kwargs, num_gpus=2, rank=rank, device='cpu',
                      detector_dir=detector_dir, cache=False)
        opts = metric_utils.MetricOptions(**common)
        real = metric_utils.compute_feature_stats_for_dataset(opts, detectors.INCEPTION, dict(return_features=True),
                                                              capture_all=True, batch_size=4)
        fid = metric_main.calc_metric('fid1k_full', **common)
        np.savez(os.path.join(out_dir, f'rank{rank}.npz'), real=real.get_all(), fid=fid.results.fid1k_full)
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_read_every_image_once_and_agree_on_the_result(tmp_path, monkeypatch):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    dataset_kwargs = helpers.write_image_folder(tmp_path / 'data', num_images=11)
    detector_dir = helpers.write_detector_dir(tmp_path / 'detectors')
    torch.multiprocessing.spawn(_two_rank_worker, nprocs=2,
                                args=(str(tmp_path / 'init'), dict(dataset_kwargs), detector_dir, str(tmp_path)))

    single = metric_utils.MetricOptions(G=None, dataset_kwargs=dataset_kwargs, device='cpu', detector_dir=detector_dir, cache=False)
    expected = metric_utils.compute_feature_stats_for_dataset(single, detectors.INCEPTION, dict(return_features=True),
                                                              capture_all=True).get_all()
    results = [np.load(tmp_path / f'rank{rank}.npz') for rank in range(2)]
    np.testing.assert_allclose(results[0]['real'], expected, rtol=1e-5, atol=1e-6)  # odd count: wrapped extra dropped
    assert float(results[0]['fid']) == float(results[1]['fid']) and np.isfinite(float(results[0]['fid']))
