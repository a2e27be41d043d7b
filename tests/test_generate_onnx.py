"""python -m training.export --dest=G.onnx: the generator as ONNX (z and c in, images out, dynamic batch), equal to
PyTorch's images to 1e-4 where onnxruntime is installed (the optional [onnx] extra)."""

import sys

import numpy as np
import pytest
import torch

from tests import generate_helpers as helpers
from training import export


@pytest.fixture(scope='module', params=['skip', 'squeeze', 'non-square'])
def conditional(tmp_path_factory, request):
    from training import networks as network_classes  # pylint: disable=import-outside-toplevel
    networks = helpers.make_networks(c_dim=3)
    if request.param in ('squeeze', 'non-square'):
        torch.manual_seed(1)
        kwargs = helpers.tiny_generator_kwargs(c_dim=3, architecture='squeeze')
        kwargs['synthesis_kwargs'].squeeze_ratio = 4
        if request.param == 'non-square':  # 16x32 images.
            kwargs['synthesis_kwargs'].init_res = (4, 8)
        networks['G_ema'] = network_classes.Generator(**kwargs).eval().requires_grad_(False)
    return networks['G_ema'], helpers.write_snapshot(tmp_path_factory.mktemp('net') / 'snap.pkl', networks)


def test_onnx_images_equal_pytorchs_for_any_batch(conditional, tmp_path):
    pytest.importorskip('onnx')
    onnxruntime = pytest.importorskip('onnxruntime')
    G, pkl = conditional
    dest = tmp_path / 'G.onnx'
    result = helpers.run_cli(export.main, ['--network', pkl, '--dest', dest, '--trunc', '0.7'])
    assert result.exit_code == 0, result.output
    session = onnxruntime.InferenceSession(str(dest))
    assert [i.name for i in session.get_inputs()] == ['z', 'c'] and session.get_outputs()[0].name == 'img'
    for batch in (1, 5):  # Traced with 2: the batch axis is dynamic.
        z = torch.randn([batch, G.z_dim], generator=torch.Generator().manual_seed(batch))
        c = torch.nn.functional.one_hot(torch.arange(batch) % 3, 3).float()
        (images,) = session.run(None, {'z': z.numpy(), 'c': c.numpy()})
        with torch.no_grad():
            expected = G(z, c, truncation_psi=0.7, noise_mode='const', force_fp32=True).numpy()
        assert images.shape == expected.shape and np.abs(images - expected).max() < 1e-4


def test_onnx_without_the_extra_is_one_line_saying_how_to_get_it(conditional, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnx', None)  # As if the extra were not installed.
    _G, pkl = conditional
    result = helpers.run_cli(export.main, ['--network', pkl, '--dest', tmp_path / 'G.onnx'])
    assert 'pip install .[onnx]' in helpers.error_line(result) and not (tmp_path / 'G.onnx').exists()


def test_trunc_only_applies_to_onnx(conditional, tmp_path):
    _G, pkl = conditional
    result = helpers.run_cli(export.main, ['--network', pkl, '--dest', tmp_path / 'model.pt', '--trunc', '0.5'])
    assert '--trunc applies to ONNX export' in helpers.error_line(result)
