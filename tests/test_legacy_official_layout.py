"""Official stylegan2-ada-pytorch tensor layouts (written out as data) load onto our Generator and Discriminator."""

import io
import pickle

import pytest
import torch

from tests import legacy_helpers as helpers
from training import legacy


def load_official(class_name, init_kwargs, layout):
    obj, tensors = helpers.official_layout_object(class_name, init_kwargs, layout)
    key = 'D' if class_name == 'Discriminator' else 'G_ema'
    helpers.forget_source_execution()
    loaded = legacy.load_network_pkl(io.BytesIO(pickle.dumps({key: obj})))
    assert not helpers.source_was_executed()
    return loaded[key], tensors


def assert_same_tensors(module, tensors):
    ours = dict(list(module.named_parameters()) + list(module.named_buffers()))
    assert sorted(ours) == sorted(tensors)
    for name, tensor in tensors.items():
        assert torch.equal(ours[name], tensor), name


def test_official_generator_layout_fills_every_tensor_of_our_generator():
    from training import networks
    G, tensors = load_official('Generator', helpers.OFFICIAL_G_INIT_KWARGS, helpers.official_generator_layout())
    assert type(G) is networks.Generator
    assert_same_tensors(G, tensors)
    assert not G.training and not any(p.requires_grad for p in G.parameters())


def test_official_discriminator_layout_fills_every_tensor_of_our_discriminator():
    from training import networks
    D, tensors = load_official('Discriminator', helpers.OFFICIAL_D_INIT_KWARGS, helpers.official_discriminator_layout())
    assert type(D) is networks.Discriminator
    assert_same_tensors(D, tensors)


def test_generator_from_official_layout_renders_finite_images_in_fp32():
    G, _ = load_official('Generator', helpers.OFFICIAL_G_INIT_KWARGS, helpers.official_generator_layout())
    with torch.no_grad():
        img = G(torch.randn([2, 16]), torch.zeros([2, 0]), noise_mode='const', force_fp32=True)
    assert img.shape == (2, 3, 16, 16) and img.dtype == torch.float32 and torch.isfinite(img).all()


def test_official_layout_with_a_tensor_we_lack_is_an_error_naming_it():
    layout = dict(helpers.official_generator_layout(), **{'synthesis.b4.extra_scale': [3]})
    obj, _ = helpers.official_layout_object('Generator', helpers.OFFICIAL_G_INIT_KWARGS, layout)
    with pytest.raises(legacy.LegacyPickleError, match=r'G_ema: .*unknown to us: synthesis\.b4\.extra_scale'):
        legacy.load_network_pkl(io.BytesIO(pickle.dumps({'G_ema': obj})))


def test_a_forks_discriminator_with_extra_constructor_arguments_is_refused_naming_them():
    # GGDR/GLeaD checkpoints: an official-style pickle whose D takes arguments our Discriminator does not.
    layout = dict(helpers.official_discriminator_layout(), **{'decoder.dec8.weight': [32, 32, 1, 1]})
    D, _ = helpers.official_layout_object('Discriminator', dict(helpers.OFFICIAL_D_INIT_KWARGS, w_dim=512), layout)
    G, _ = helpers.official_layout_object('Generator', helpers.OFFICIAL_G_INIT_KWARGS, helpers.official_generator_layout())
    data = helpers.official_pickle_bytes(dict(G=G, D=D, G_ema=G, augment_pipe=None, training_set_kwargs={}))
    with pytest.raises(legacy.LegacyPickleError, match=r"D: cannot build Discriminator from the pickled constructor "
                                                       r"arguments \(TypeError: .*unexpected keyword argument 'w_dim'\)"):
        legacy.load_network_pkl(io.BytesIO(data))
