"""The restricted unpickler and persistence's class rules: network pickles load, nothing else in a pickle runs."""

import builtins
import collections
import copy
import io
import os
import pickle
import pickletools
import subprocess
import sys
import uuid

import numpy as np
import pytest
import torch

import dnnlib
from tests import core_helpers
from tests import safety_helpers as evil
from torch_utils import persistence
from torch_utils import safe_unpickle

PROTOCOLS = (2, 3, 4, 5)
_STRING_OPCODES = {'STRING', 'BINSTRING', 'SHORT_BINSTRING', 'UNICODE', 'BINUNICODE', 'SHORT_BINUNICODE',
                   'BINUNICODE8'}
_NO_PUSH_OPCODES = {'PROTO', 'FRAME', 'STOP', 'MEMOIZE', 'PUT', 'BINPUT', 'LONG_BINPUT', 'POP', 'POP_MARK'}


def named_globals(data):
    """(module, name) of every GLOBAL and STACK_GLOBAL in a pickle, read with pickletools (nothing loaded)."""
    memo, pushed, found = {}, [], set()
    for opcode, arg, _ in pickletools.genops(data):
        name = opcode.name
        if name == 'GLOBAL':
            found.add(tuple(arg.split(' ', 1)))
        elif name == 'STACK_GLOBAL':
            found.add((pushed[-2], pushed[-1]))  # Its operands are the two strings pushed last.
        elif name == 'MEMOIZE':
            memo[len(memo)] = pushed[-1]
        elif name in ('PUT', 'BINPUT', 'LONG_BINPUT'):
            memo[arg] = pushed[-1]
        if name in ('GET', 'BINGET', 'LONG_BINGET'):
            pushed.append(memo[arg])
        elif name in _STRING_OPCODES:
            pushed.append(arg)
        elif name not in _NO_PUSH_OPCODES:
            pushed.append(None)
    return found


def allowed(module, name):
    try:
        safe_unpickle.RestrictedUnpickler(io.BytesIO(b'')).find_class(module, name)
    except persistence.UnsafePickleError:
        return False
    return True


def restricted_loads(data):
    return safe_unpickle.RestrictedUnpickler(io.BytesIO(data)).load()


def raw_global(module, name):
    """A protocol-0 pickle that names `module.name` and calls it with no arguments."""
    return f'c{module}\n{name}\n)R.'.encode()

#----------------------------------------------------------------------------
# What network pickles contain.


def _tiny_generator(architecture, c_dim=0):
    from training import networks
    return networks.Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=16, img_channels=3,
                              mapping_kwargs=dict(num_layers=1),
                              synthesis_kwargs=dict(channel_base=64, channel_max=16, architecture=architecture))


def _tiny_discriminator(architecture, c_dim=0):
    from training import networks
    return networks.Discriminator(c_dim=c_dim, img_resolution=16, img_channels=3, channel_base=64, channel_max=16,
                                  architecture=architecture)


def _augment_pipe():
    from training.augment import AugmentPipe
    strengths = ('xflip rotate90 xint scale rotate aniso xfrac brightness contrast lumaflip hue saturation '
                 'imgfilter noise cutout').split()
    return AugmentPipe(**{name: 1 for name in strengths})


@pytest.fixture(scope='module')
def network_objects():
    """Every kind of object a snapshot holds, and a snapshot dict laid out as the training loop writes it."""
    torch.manual_seed(0)
    objects = {f'G-{arch}': _tiny_generator(arch) for arch in ('orig', 'skip', 'resnet', 'squeeze')}
    objects.update({f'D-{arch}': _tiny_discriminator(arch, c_dim=2) for arch in ('orig', 'skip', 'resnet')})
    objects['augment_pipe'] = _augment_pipe()
    nets = dict(G=objects['G-squeeze'], D=objects['D-resnet'], G_ema=objects['G-squeeze'],
                augment_pipe=objects['augment_pipe'])
    snapshot = {key: copy.deepcopy(module).eval().requires_grad_(False) for key, module in nets.items()}
    dataset_kwargs = dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path='x.zip')
    snapshot['training_set_kwargs'] = dict(dataset_kwargs)  # The loop stores a plain dict.
    objects['snapshot'] = snapshot
    objects['snapshot-easydict'] = dict(snapshot, training_set_kwargs=dnnlib.EasyDict(path='x.zip'))
    return objects


@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_every_global_our_network_pickles_name_is_allowed(network_objects, protocol):
    for key, obj in network_objects.items():
        refused = sorted(g for g in named_globals(pickle.dumps(obj, protocol=protocol)) if not allowed(*g))
        assert not refused, (key, refused)


def test_every_global_official_layout_pickles_name_is_allowed():
    from tests import legacy_helpers
    data = legacy_helpers.official_pickle_bytes(legacy_helpers.make_networks(seed=1))
    assert not sorted(g for g in named_globals(data) if not allowed(*g))


@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_network_pickles_load_with_the_same_outputs(network_objects, protocol):
    z = torch.randn([2, 8], generator=torch.Generator().manual_seed(1))
    img = torch.randn([2, 3, 16, 16], generator=torch.Generator().manual_seed(2))
    c = torch.zeros([2, 2])
    for arch in ('orig', 'squeeze'):
        G = network_objects[f'G-{arch}']
        loaded = restricted_loads(pickle.dumps(G, protocol=protocol))
        assert type(loaded) is type(G)
        assert torch.equal(loaded(z, None, noise_mode='const'), G(z, None, noise_mode='const'))
    D = network_objects['D-resnet']
    assert torch.equal(restricted_loads(pickle.dumps(D, protocol=protocol))(img, c), D(img, c))


def test_snapshot_dict_loads_with_buffers_and_eval_state(network_objects):
    snapshot = network_objects['snapshot-easydict']
    loaded = restricted_loads(pickle.dumps(snapshot))
    assert loaded['training_set_kwargs'] == {'path': 'x.zip'} and type(loaded['training_set_kwargs']) is dnnlib.EasyDict
    for name, buffer in snapshot['augment_pipe'].named_buffers():
        assert torch.equal(dict(loaded['augment_pipe'].named_buffers())[name], buffer), name
    assert not loaded['G_ema'].training and not any(p.requires_grad for p in loaded['G_ema'].parameters())


@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_numpy_values_torch_dtypes_devices_and_plain_builtins_load(protocol):
    data = dict(array=np.arange(6, dtype=np.float32).reshape(2, 3), scalar=np.float64(0.25), dtype=torch.float16,
                device=torch.device('cpu'), set={1, 2}, frozenset=frozenset([3]), slice=slice(1, 5, 2),
                complex=complex(1, 2), range=range(3), bytes=b'\x00\xff', bytearray=bytearray(b'ab'),
                ordered=collections.OrderedDict(a=1), easy=dnnlib.EasyDict(a=1), tensor=torch.arange(3))
    loaded = restricted_loads(pickle.dumps(data, protocol=protocol))
    assert np.array_equal(loaded.pop('array'), data.pop('array'))
    assert torch.equal(loaded.pop('tensor'), data.pop('tensor'))
    assert loaded == data

#----------------------------------------------------------------------------
# What is refused.


@pytest.mark.parametrize('func, make_args', [
    (eval, lambda marker: (f"open({marker!r}, 'w')",)),
    (exec, lambda marker: (f"open({marker!r}, 'w')",)),
    (builtins.open, lambda marker: (marker, 'w')),
    (os.system, lambda marker: (f'touch {marker}',)),
    (subprocess.call, lambda marker: (['touch', marker],)),
    (dnnlib.util.call_func_by_name, lambda marker: ()),
], ids=['eval', 'exec', 'open', 'system', 'subprocess', 'call_func_by_name'])
def test_a_payload_is_refused_by_name_before_it_runs(tmp_path, func, make_args):
    marker = str(tmp_path / 'ran')
    refusal = f'refusing to load {func.__module__}.{func.__name__}:'
    for protocol in PROTOCOLS:
        with pytest.raises(persistence.UnsafePickleError, match=refusal):
            restricted_loads(pickle.dumps(dict(G=evil.Call(func, *make_args(marker))), protocol=protocol))
    assert not os.path.exists(marker)


@pytest.mark.parametrize('module, name', [
    ('builtins', 'getattr'), ('builtins', '__import__'), ('builtins', 'compile'), ('__builtin__', 'eval'),
    ('importlib', 'import_module'), ('pickle', 'loads'), ('torch', 'load'), ('torch.serialization', 'load'),
    ('numpy', 'load'), ('copyreg', '_reconstructor'), ('torch_utils.persistence', '_execute_source'),
    ('torch_utils.persistence', 'persistent_class'), ('dnnlib.util', 'construct_class_by_name'),
    ('torch', '_C'), ('torch.nn', 'Module'), ('nt', 'system'), ('antigravity', 'fly'),
])
def test_globals_outside_the_allow_list_are_refused_by_name(module, name):
    with pytest.raises(persistence.UnsafePickleError) as info:
        restricted_loads(raw_global(module, name))
    canonical = 'builtins' if module == '__builtin__' else module
    assert f'refusing to load {canonical}.{name}:' in str(info.value)
    assert '\n' not in str(info.value)
    assert 'antigravity' not in sys.modules  # Refused without importing the module it names.


def test_refusal_is_an_unpickling_error():
    assert issubclass(persistence.UnsafePickleError, pickle.UnpicklingError)


def test_torch_dtypes_are_allowed_by_value_not_every_torch_attribute():
    assert restricted_loads(b'ctorch\nbfloat16\n.') is torch.bfloat16
    with pytest.raises(persistence.UnsafePickleError, match='refusing to load torch.save'):
        restricted_loads(b'ctorch\nsave\n.')


def test_storage_bytes_holding_a_torch_save_payload_do_not_run(tmp_path):
    # torch.storage._load_from_bytes reads these bytes with torch.load(weights_only=False).
    marker = tmp_path / 'ran'
    data = pickle.dumps(dict(G=evil.storage_payload(marker)))
    with pytest.raises(persistence.UnsafePickleError, match='tensor storage.*io.open'):
        restricted_loads(data)
    assert not marker.exists()


def test_storage_bytes_holding_something_other_than_a_storage_are_refused():
    buffer = io.BytesIO()
    torch.save({'not': 'a storage'}, buffer, _use_new_zipfile_serialization=False)
    with pytest.raises(persistence.UnsafePickleError, match='its bytes hold a dict'):
        restricted_loads(pickle.dumps(evil.Call(torch.storage._load_from_bytes, buffer.getvalue())))


def test_codecs_encode_accepts_only_latin1():
    import _codecs
    assert restricted_loads(pickle.dumps(evil.Call(_codecs.encode, 'ÿ', 'latin1'))) == b'\xff'
    with pytest.raises(persistence.UnsafePickleError, match="codec 'rot13'"):
        restricted_loads(pickle.dumps(evil.Call(_codecs.encode, 'abc', 'rot13')))

#----------------------------------------------------------------------------
# Which classes a persistent object may name (applies to plain pickle.load too).


def test_a_class_that_is_not_persistent_is_refused_even_from_an_imported_module():
    popen = pickle.dumps(evil.persistent_payload('subprocess', 'Popen', state=dict(args=['true'])))
    with pytest.raises(persistence.UnsafePickleError, match='refusing to load subprocess.Popen: not a persistent'):
        pickle.loads(popen)
    with pytest.raises(persistence.UnsafePickleError, match='refusing to load dnnlib.util.EasyDict: not a persistent'):
        pickle.loads(pickle.dumps(evil.persistent_payload('dnnlib.util', 'EasyDict')))


def test_a_function_named_as_a_class_is_refused():
    with pytest.raises(persistence.PersistenceError, match="'system' from module 'os'"):
        pickle.loads(pickle.dumps(evil.persistent_payload('os', 'system', state=dict(command='true'))))


def _module_on_path(tmp_path, monkeypatch, body):
    """A module that is importable from tmp_path but not imported; returns its name."""
    name = f'untrusted_{uuid.uuid4().hex[:8]}'
    (tmp_path / f'{name}.py').write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_a_module_outside_this_package_is_not_imported(tmp_path, monkeypatch):
    marker = tmp_path / 'imported'
    name = _module_on_path(tmp_path, monkeypatch, f'open({str(marker)!r}, "w").close()\n')
    with pytest.raises(persistence.PersistenceError, match=f"'{name}'.*trust_modules"):
        pickle.loads(pickle.dumps(evil.persistent_payload(name, 'Scaler')))
    assert name not in sys.modules and not marker.exists()


def test_trust_modules_lets_a_pickle_import_a_package_of_persistent_classes(tmp_path, monkeypatch):
    name = _module_on_path(tmp_path, monkeypatch, core_helpers.TOY_MODULE_SOURCE)
    data = pickle.dumps(evil.persistent_payload(name, 'Scaler', state=dict(_init_args=(2,), _init_kwargs={})))
    with persistence.trust_modules(name):
        obj = pickle.loads(data)
    assert type(obj) is sys.modules[name].Scaler and obj.init_args == (2,)
    with pytest.raises(ValueError, match='absolute package names'):
        with persistence.trust_modules('.relative'):
            pass


def test_trust_modules_is_scoped_to_its_block(tmp_path, monkeypatch):
    name = _module_on_path(tmp_path, monkeypatch, core_helpers.TOY_MODULE_SOURCE)
    with persistence.trust_modules(name):
        pass
    with pytest.raises(persistence.PersistenceError, match='trust_modules'):
        pickle.loads(pickle.dumps(evil.persistent_payload(name, 'Scaler')))
    assert name not in sys.modules


def test_torch_layers_inside_a_network_load_and_other_torch_nn_names_are_refused():
    layers = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU())
    loaded = restricted_loads(pickle.dumps(layers))
    assert isinstance(loaded[0], torch.nn.Linear) and torch.equal(loaded[0].weight, layers[0].weight)
    with pytest.raises(persistence.UnsafePickleError, match='refusing to load torch.nn.modules.module.register_module_forward_hook'):
        restricted_loads(raw_global('torch.nn.modules.module', 'register_module_forward_hook'))
