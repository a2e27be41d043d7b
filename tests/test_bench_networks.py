"""bench/networks.py measures the preset networks it names and says which op paths and TF32 setting it timed (a
smoke run at 32 px on the CPU; no timing asserted)."""

import importlib.util
import os

import pytest
import torch

from torch_utils import misc

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location('bench_networks', os.path.join(REPO_ROOT, 'bench', 'networks.py'))
bench_networks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_networks)


@pytest.mark.slow
def test_one_config_measures_the_cifar_preset_squeeze_generator_with_tf32_off():
    previous = misc.set_tf32(True)
    try:
        result = bench_networks.measure('squeeze8', 32, batch=1, repeats=1, device='cpu')
        assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (False, False)
    finally:
        misc.set_tf32(previous)
    assert (result['arch'], result['resolution'], result['tf32']) == ('squeeze8', 32, False)
    assert sorted(result['ops']) == ['bias_act', 'upfirdn2d']  # What it measured: here the references.
    assert all(path.startswith('reference') for path in result['ops'].values())
    # The cifar preset at 32 px: 512 channels throughout; squeeze r=8 makes G smaller than skip's 19.95M.
    assert 10e6 < result['G_params'] < 19e6 and 20e6 < result['D_params'] < 21e6
    for name in ('G_fwd', 'G_fwd_bwd', 'D_fwd', 'D_fwd_bwd'):
        assert result[f'{name}_s'] > 0 and result[f'{name}_MiB'] >= 0
