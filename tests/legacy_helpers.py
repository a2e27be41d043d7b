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

#----------------------------------------------------------------------------
# The tensor layout of stylegan2-ada-pytorch's own networks, written out as data (from its
# training/networks.py), so loading is checked against the original project, not against ourselves.

OFFICIAL_G_INIT_KWARGS = dict(  # As the official train.py builds them (tiny sizes, its fp16 settings).
    z_dim=16, w_dim=16, c_dim=0, img_resolution=16, img_channels=3,
    mapping_kwargs=dnnlib.EasyDict(num_layers=2),
    synthesis_kwargs=dnnlib.EasyDict(channel_base=512, channel_max=32, num_fp16_res=4, conv_clamp=256))
OFFICIAL_D_INIT_KWARGS = dict(
    c_dim=0, img_resolution=16, img_channels=3, block_kwargs=dnnlib.EasyDict(), mapping_kwargs=dnnlib.EasyDict(),
    epilogue_kwargs=dnnlib.EasyDict(mbstd_group_size=4), channel_base=512, channel_max=32, num_fp16_res=4,
    conv_clamp=256)


def official_generator_layout():
    """{name: shape} of the official skip Generator for OFFICIAL_G_INIT_KWARGS (32 channels at every resolution)."""
    layout = {'mapping.w_avg': [16]}
    for i in range(2):
        layout.update({f'mapping.fc{i}.weight': [16, 16], f'mapping.fc{i}.bias': [16]})
    for res in (4, 8, 16):
        block = f'synthesis.b{res}'
        layout[f'{block}.resample_filter'] = [4, 4]
        if res == 4:
            layout[f'{block}.const'] = [32, 4, 4]
        for conv in (['conv1'] if res == 4 else ['conv0', 'conv1']):
            layout.update({f'{block}.{conv}.weight': [32, 32, 3, 3], f'{block}.{conv}.bias': [32],
                           f'{block}.{conv}.noise_strength': [], f'{block}.{conv}.noise_const': [res, res],
                           f'{block}.{conv}.resample_filter': [4, 4], f'{block}.{conv}.affine.weight': [32, 16],
                           f'{block}.{conv}.affine.bias': [32]})
        layout.update({f'{block}.torgb.weight': [3, 32, 1, 1], f'{block}.torgb.bias': [3],
                       f'{block}.torgb.affine.weight': [32, 16], f'{block}.torgb.affine.bias': [32]})
    return layout


def official_discriminator_layout():
    """{name: shape} of the official resnet Discriminator for OFFICIAL_D_INIT_KWARGS."""
    layout = {}
    for res in (16, 8):
        block = f'b{res}'
        layout[f'{block}.resample_filter'] = [4, 4]
        if res == 16:
            layout.update({f'{block}.fromrgb.weight': [32, 3, 1, 1], f'{block}.fromrgb.bias': [32],
                           f'{block}.fromrgb.resample_filter': [4, 4]})
        for conv in ('conv0', 'conv1'):
            layout.update({f'{block}.{conv}.weight': [32, 32, 3, 3], f'{block}.{conv}.bias': [32],
                           f'{block}.{conv}.resample_filter': [4, 4]})
        layout.update({f'{block}.skip.weight': [32, 32, 1, 1], f'{block}.skip.resample_filter': [4, 4]})
    layout.update({'b4.conv.weight': [32, 33, 3, 3], 'b4.conv.bias': [32], 'b4.conv.resample_filter': [4, 4],
                   'b4.fc.weight': [32, 32 * 4 * 4], 'b4.fc.bias': [32], 'b4.out.weight': [1, 32], 'b4.out.bias': [1]})
    return layout


# Class of each submodule in the official networks, by attribute name (only the name is pickled).
_OFFICIAL_CHILD_CLASSES = {
    'mapping': 'MappingNetwork', 'synthesis': 'SynthesisNetwork', 'conv0': 'SynthesisLayer',
    'conv1': 'SynthesisLayer', 'torgb': 'ToRGBLayer', 'fromrgb': 'Conv2dLayer', 'skip': 'Conv2dLayer',
    'conv': 'Conv2dLayer', 'fc': 'FullyConnectedLayer', 'out': 'FullyConnectedLayer', 'mbstd': 'MinibatchStdLayer'}


def _official_child_class(path, discriminator):
    name = path.rsplit('.', 1)[-1]
    if name.startswith('b') and name[1:].isdigit():
        if not discriminator:
            return 'SynthesisBlock'
        return 'DiscriminatorEpilogue' if name == 'b4' else 'DiscriminatorBlock'
    if discriminator and name in ('conv0', 'conv1'):
        return 'Conv2dLayer'
    return _OFFICIAL_CHILD_CLASSES.get(name, 'FullyConnectedLayer')


def official_layout_object(class_name, init_kwargs, layout, seed=0):
    """A persistent object as the official project pickles it: nested module states with random tensors.

    Returns (object to pickle, {name: tensor} that was put in it). Parameter tensors are
    torch.nn.Parameter with requires_grad=False, as in official snapshots.
    """
    generator = torch.Generator().manual_seed(seed)
    discriminator = class_name == 'Discriminator'
    tensors = {}
    states = {'': dict(_init_args=(), _init_kwargs=init_kwargs)}
    for name, shape in layout.items():
        path, _, leaf = name.rpartition('.')
        parts = path.split('.') if path else []
        for depth in range(len(parts)):  # Make sure every ancestor module exists.
            states.setdefault('.'.join(parts[:depth + 1]), dict(_init_args=(), _init_kwargs={}))
        tensor = torch.randn(shape, generator=generator)
        is_buffer = leaf in ('resample_filter', 'noise_const', 'w_avg')
        value = tensor if is_buffer else torch.nn.Parameter(tensor, requires_grad=False)
        states[path].setdefault('_buffers' if is_buffer else '_parameters', {})[leaf] = value
        tensors[name] = tensor
    objects = {}
    for path in sorted(states, key=lambda p: -p.count('.') if p else 1):  # Children before parents.
        state = dict(states[path], training=False)
        prefix = f'{path}.' if path else ''
        state['_modules'] = {child[len(prefix):]: obj for child, obj in objects.items()
                             if child.startswith(prefix) and '.' not in child[len(prefix):] and child != path}
        own_class = class_name if not path else _official_child_class(path, discriminator)
        objects[path] = RawPersistentObject(own_class, NETWORKS_SOURCE, state)
    return objects[''], tensors
