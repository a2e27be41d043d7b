"""Tiny networks, and pickles written in stylegan2-ada-pytorch's own layout, for the legacy loading tests."""

import builtins
import copy
import io
import pickle
import uuid

import torch

import dnnlib
from torch_utils import persistence

RESOLUTION = 16
SOURCE_RAN_FLAG = 'LEGACY_TEST_EMBEDDED_SOURCE_RAN'  # Set in builtins by the embedded sources below if executed.

# Class names the official training/networks.py and training/augment.py define.
OFFICIAL_NETWORK_CLASSES = [
    'FullyConnectedLayer', 'Conv2dLayer', 'MappingNetwork', 'SynthesisLayer', 'ToRGBLayer', 'SynthesisBlock',
    'SynthesisNetwork', 'Generator', 'DiscriminatorBlock', 'MinibatchStdLayer', 'DiscriminatorEpilogue',
    'Discriminator']
OFFICIAL_AUGMENT_CLASSES = ['AugmentPipe']


def booby_trapped_source(class_names, extra_lines=()):
    """Module source that defines `class_names` (as a parser sees it) but flags and fails when executed."""
    lines = ['"""Stand-in for a module embedded in an official pickle; executing it is a test failure."""',
             'import builtins',
             f'builtins.{SOURCE_RAN_FLAG} = True',
             "raise RuntimeError('the embedded module source was executed')"]
    lines += list(extra_lines)
    lines += [f'class {name}:\n    pass' for name in class_names]
    return '\n'.join(lines) + '\n'


NETWORKS_SOURCE = booby_trapped_source(OFFICIAL_NETWORK_CLASSES)
AUGMENT_SOURCE = booby_trapped_source(OFFICIAL_AUGMENT_CLASSES)


def source_was_executed():
    return getattr(builtins, SOURCE_RAN_FLAG, False)


def forget_source_execution():
    if hasattr(builtins, SOURCE_RAN_FLAG):
        delattr(builtins, SOURCE_RAN_FLAG)

#----------------------------------------------------------------------------
# Networks.


def generator_kwargs(architecture='skip', c_dim=0, **synthesis_kwargs):
    return dict(
        z_dim=16,
        c_dim=c_dim,
        w_dim=16,
        img_resolution=RESOLUTION,
        img_channels=3,
        mapping_kwargs=dnnlib.EasyDict(num_layers=2),
        synthesis_kwargs=dnnlib.EasyDict(channel_base=512, channel_max=32, num_fp16_res=0, conv_clamp=None,
                                         architecture=architecture, **synthesis_kwargs),
    )


def discriminator_kwargs(c_dim=0):
    return dict(c_dim=c_dim, img_resolution=RESOLUTION, img_channels=3, channel_base=512, channel_max=32,
                num_fp16_res=0, conv_clamp=None)


def scramble_(module, seed):
    """Move every parameter and the learned buffers away from anything a constructor would produce."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            if isinstance(tensor, torch.nn.Parameter) or name.endswith(('w_avg', 'noise_const')):
                tensor.add_(torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype) * 0.1)
    return module


def make_networks(architecture='skip', c_dim=0, seed=0):
    """A snapshot dict as the training loop writes it: G, D, G_ema (eval, frozen), augment_pipe, training_set_kwargs."""
    from training import networks
    torch.manual_seed(seed)
    G = scramble_(networks.Generator(**generator_kwargs(architecture, c_dim)), seed)
    D = scramble_(networks.Discriminator(**discriminator_kwargs(c_dim)), seed + 1)
    G_ema = scramble_(copy.deepcopy(G), seed + 2)
    return dict(
        G=G.eval().requires_grad_(False),
        D=D.eval().requires_grad_(False),
        G_ema=G_ema.eval().requires_grad_(False),
        augment_pipe=None,
        training_set_kwargs=dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path='data.zip',
                                            use_labels=c_dim > 0, max_size=10, xflip=False, resolution=RESOLUTION),
    )


def generator_output(G, seed=1, batch=2):
    z = torch.randn([batch, G.z_dim], generator=torch.Generator().manual_seed(seed))
    c = torch.zeros([batch, G.c_dim])
    if G.c_dim:
        c[:, 0] = 1
    with torch.no_grad():
        return G(z, c, truncation_psi=0.7, noise_mode='const', force_fp32=True)


def discriminator_output(D, seed=1, batch=2):
    img = torch.randn([batch, 3, RESOLUTION, RESOLUTION], generator=torch.Generator().manual_seed(seed))
    c = torch.zeros([batch, D.c_dim])
    if D.c_dim:
        c[:, 0] = 1
    with torch.no_grad():
        return D(img, c, force_fp32=True)

#----------------------------------------------------------------------------
# Pickles in the official layout.


class OfficialLayoutPickler(pickle.Pickler):
    """Pickles our persistent objects exactly as stylegan2-ada-pytorch does: bare class name, no module name.

    meta = {type: 'class', version, module_src, class_name, state}, reduced to
    torch_utils.persistence._reconstruct_persistent_obj; `module_src` is a booby-trapped stand-in.
    """

    def __init__(self, file, version=4, tamper=None):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.version = version
        self.tamper = tamper    # Optional fn(class_name, state) -> state, to write a damaged pickle.

    def reducer_override(self, obj):
        if isinstance(obj, type) or not persistence.is_persistent(obj):
            return NotImplemented
        class_name = type(obj).__name__
        state = dict(obj.__getstate__())  # Includes _init_args and _init_kwargs, as in the official project.
        if self.tamper is not None:
            state = self.tamper(class_name, state)
        module_src = AUGMENT_SOURCE if class_name in OFFICIAL_AUGMENT_CLASSES else NETWORKS_SOURCE
        meta = dict(type='class', version=self.version, module_src=module_src, class_name=class_name, state=state)
        return persistence._reconstruct_persistent_obj, (meta,)  # pylint: disable=protected-access


def official_pickle_bytes(data, **pickler_kwargs):
    with io.BytesIO() as f:
        OfficialLayoutPickler(f, **pickler_kwargs).dump(data)
        return f.getvalue()


class RawPersistentObject:
    """Pickles as a bare official-style persistent object with the given meta (class name, source, state)."""

    def __init__(self, class_name, module_src, state):
        self.meta = dict(type='class', version=6, module_src=module_src, class_name=class_name, state=state)

    def __reduce__(self):
        return persistence._reconstruct_persistent_obj, (self.meta,)  # pylint: disable=protected-access


def unique_source(body):
    """Module source that no earlier test has used (persistence caches executed sources by their text)."""
    return f'# {uuid.uuid4().hex}\n{body}'


def tensorflow_pickle_bytes():
    """The opening of a TensorFlow-era StyleGAN pickle: an instance of dnnlib.tflib.network.Network."""
    return b'\x80\x02cdnnlib.tflib.network\nNetwork\nq\x00)\x81q\x01.'
