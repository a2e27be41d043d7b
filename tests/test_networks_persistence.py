"""Networks pickle with their constructor arguments and come back identical; names match stylegan2-ada-pytorch."""

import copy
import os
import pickle

import pytest
import torch

import training
from tests import core_helpers
from tests.networks_helpers import latents, randomize_trainable_zeros, tiny_discriminator, tiny_generator
from torch_utils import persistence
from training import networks

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('arch', ['skip', 'squeeze'])
def test_generator_pickle_round_trip_keeps_outputs_and_init_kwargs(arch):
    G = randomize_trainable_zeros(tiny_generator(arch, c_dim=2)).eval()
    G2 = pickle.loads(pickle.dumps(G))
    assert type(G2) is type(G) and persistence.is_persistent(G2)
    assert G2.init_kwargs == G.init_kwargs
    z, c = latents(c_dim=2)
    assert torch.equal(G2(z, c, noise_mode='const'), G(z, c, noise_mode='const'))


def test_discriminator_pickle_round_trip_keeps_outputs():
    D = randomize_trainable_zeros(tiny_discriminator('resnet', c_dim=2)).eval()
    D2 = pickle.loads(pickle.dumps(D))
    img, c = torch.randn([2, 3, 16, 16]), torch.eye(2)
    assert torch.equal(D2(img, c), D(img, c))


def test_generator_rebuilt_from_init_kwargs_accepts_copied_state():
    G = tiny_generator('squeeze', seed=1)
    G2 = type(G)(**G.init_kwargs)
    G2.load_state_dict(copy.deepcopy(G.state_dict()))
    z, c = latents()
    assert torch.equal(G2.eval()(z, c, noise_mode='const'), G.eval()(z, c, noise_mode='const'))


def test_every_network_class_is_persistent():
    for name in ['FullyConnectedLayer', 'Conv2dLayer', 'MappingNetwork', 'SynthesisLayer', 'ToRGBLayer',
                 'SynthesisBlock', 'SqueezeBlock', 'SynthesisNetwork', 'Generator', 'DiscriminatorBlock',
                 'MinibatchStdLayer', 'DiscriminatorEpilogue', 'Discriminator']:
        assert persistence.is_persistent(getattr(networks, name)), name


def test_skip_block_parameter_and_buffer_names_are_stylegan2_ada_names():
    block = tiny_generator('skip').synthesis.b8
    layer = ['affine.weight', 'affine.bias', 'weight', 'noise_strength', 'bias']
    expected_params = [f'{conv}.{n}' for conv in ('conv0', 'conv1') for n in layer]
    expected_params += ['torgb.affine.weight', 'torgb.affine.bias', 'torgb.weight', 'torgb.bias']
    assert sorted(n for n, _ in block.named_parameters()) == sorted(expected_params)
    expected_buffers = ['resample_filter', 'conv0.resample_filter', 'conv0.noise_const',
                        'conv1.resample_filter', 'conv1.noise_const']
    assert sorted(n for n, _ in block.named_buffers()) == sorted(expected_buffers)


def test_resnet_discriminator_names_are_stylegan2_ada_names():
    D = tiny_discriminator('resnet', c_dim=2)
    names = {n for n, _ in D.named_parameters()} | {n for n, _ in D.named_buffers()}
    for name in ['b16.fromrgb.weight', 'b16.fromrgb.bias', 'b16.conv0.weight', 'b16.conv1.weight',
                 'b16.skip.weight', 'b16.resample_filter', 'b8.skip.resample_filter', 'mapping.embed.weight',
                 'mapping.fc0.weight', 'b4.conv.weight', 'b4.fc.weight', 'b4.out.weight', 'b4.out.bias']:
        assert name in names, name
    assert 'b8.fromrgb.weight' not in names and 'b16.skip.bias' not in names


def _pickle_under_module_names_before_the_networks_package(module):
    """Bytes of a pickle of `module` whose meta names the flat modules snapshots named before training/networks/."""
    old_names = {new: old for old, new in training.MOVED_MODULES.items()}
    classes = {type(m) for m in module.modules() if persistence.is_persistent(m)}
    saved = {cls: cls._orig_module_name for cls in classes}
    try:
        for cls in classes:
            cls._orig_module_name = old_names.get(cls._orig_module_name, cls._orig_module_name)
        return pickle.dumps(module)
    finally:
        for cls, name in saved.items():
            cls._orig_module_name = name


@pytest.mark.parametrize('arch', ['skip', 'squeeze'])
def test_snapshot_naming_the_old_flat_modules_loads_in_a_fresh_process(tmp_path, arch):
    G = randomize_trainable_zeros(tiny_generator(arch)).eval()
    data = _pickle_under_module_names_before_the_networks_package(G)
    assert b'training.networks_generator' in data and b'training.networks.generator' not in data
    (tmp_path / 'old.pkl').write_bytes(data)
    z, c = latents()
    torch.save(dict(z=z, c=c), tmp_path / 'inputs.pt')
    result = core_helpers.run_python(f'''
        import json, pickle, torch
        G = pickle.load(open({str(tmp_path / 'old.pkl')!r}, 'rb'))
        inputs = torch.load({str(tmp_path / 'inputs.pt')!r})
        img = G(inputs['z'], inputs['c'], noise_mode='const')
        print(json.dumps(dict(module=type(G).__module__, img=img.flatten().tolist())))
    ''', cwd=REPO_ROOT)
    assert result['module'] == 'training.networks.generator'
    assert result['img'] == G(z, c, noise_mode='const').flatten().tolist()
