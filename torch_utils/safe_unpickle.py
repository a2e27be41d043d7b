"""The security boundary of loading: what a network pickle may name, and the unpickler that refuses everything else.

Unpickling calls whatever functions and classes a pickle names, so RestrictedUnpickler lets a pickle name only
the globals below. They are what network pickles contain, listed with pickletools from pickles (protocols 2-5)
of G (orig/skip/resnet/squeeze), D (orig/skip/resnet), AugmentPipe, snapshot dicts and stylegan2-ada-pytorch's
layout: persistent objects, tensors, OrderedDict, EasyDict, numpy scalars and set. To those we add numpy
arrays, torch.device, torch dtypes and plain builtins, which hold data; none of them runs code or touches files
whatever arguments the pickle passes. Persistent objects go to torch_utils.persistence._reconstruct_persistent_obj,
which rebuilds only classes made by @persistent_class from trusted modules (persistence._resolve_class), and
executes no embedded source unless the caller opted in.
"""

import _compat_pickle
import codecs
import io
import pickle
import sys

import torch

TRUST_HINT = 'if you trust the file: training.legacy.load_network_pkl(..., allow_code_execution=True)'


class PersistenceError(pickle.UnpicklingError):
    """A persistent object in a pickle cannot be rebuilt; the message says why and what to do."""


class UnsafePickleError(PersistenceError):
    """A pickle names something that could run code; refused before it is called or imported."""

#----------------------------------------------------------------------------

SAFE_GLOBALS = frozenset([
    ('torch_utils.persistence', '_reconstruct_persistent_obj'),  # Classes: see _resolve_class.
    ('torch._utils', '_rebuild_tensor_v2'),
    ('torch._utils', '_rebuild_parameter'),
    ('torch', 'device'),
    ('collections', 'OrderedDict'),
    ('dnnlib.util', 'EasyDict'), ('dnnlib', 'EasyDict'),
    ('numpy', 'dtype'), ('numpy', 'ndarray'),
    ('numpy.core.multiarray', 'scalar'), ('numpy._core.multiarray', 'scalar'),  # numpy 1 and 2 spellings.
    ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.numeric', '_frombuffer'), ('numpy._core.numeric', '_frombuffer'),  # Arrays, protocol 5.
] + [('builtins', name) for name in ('set', 'frozenset', 'slice', 'complex', 'range', 'bytes', 'bytearray',
                                     'int', 'float', 'bool', 'str', 'tuple', 'list', 'dict')])


def _python3_name(module, name):
    """The Python 3 name of a global that a protocol-2 pickle names the Python 2 way (__builtin__.xrange)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:  # The table pickle itself uses for these pickles.
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _load_storage_from_bytes(data):
    """torch.storage._load_from_bytes, but without torch.load(weights_only=False), which unpickles anything."""
    try:
        storage = torch.load(io.BytesIO(data), weights_only=True)
    except Exception as error:  # torch raises several types for foreign or damaged bytes.
        reason = next((line.strip() for line in str(error).splitlines() if 'WeightsUnpickler error' in line),
                      f'{type(error).__name__}: {str(error).strip()[:200]}')
        raise UnsafePickleError(f'refusing to load a tensor storage whose bytes are not plain tensor data '
                                f'({reason.split(". Please use")[0]})') from None
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise UnsafePickleError(f'refusing to load a tensor storage: its bytes hold a {type(storage).__name__}')
    return storage


def _encode_latin1(text, encoding):
    """_codecs.encode for protocol-2 bytes; other codecs are looked up by name, which may import modules."""
    if encoding not in ('latin1', 'latin-1'):
        raise UnsafePickleError(f'refusing to load _codecs.encode with codec {encoding!r}; pickles use latin1')
    return codecs.encode(text, 'latin1')


# Globals whose real implementation can run code; the pickle gets a safe version instead.
SAFE_REPLACEMENTS = {
    ('torch.storage', '_load_from_bytes'): _load_storage_from_bytes,
    ('_codecs', 'encode'): _encode_latin1,
}


def _torch_layer_class(module, name):
    """A layer class of torch.nn (Linear, Conv2d, ModuleList, ...) that a persistent network may hold.

    Such a module is rebuilt as object.__new__ plus its pickled attributes (Module.__setstate__), which
    calls nothing; hooks it might carry would be globals of their own, and refused like any other.
    """
    cls = getattr(sys.modules.get(module), name, None) if module in sys.modules else None
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise UnsafePickleError(f'refusing to load {module}.{name}: not a torch.nn layer class; {TRUST_HINT}')
    return cls


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for network pickles: globals outside SAFE_GLOBALS are refused before anything calls them.

    Persistent objects are rebuilt by _reconstruct_persistent_obj under its own rules (trusted modules,
    persistent classes, no embedded source unless allowed). Under allow_source_execution() a caller that
    trusts the file may use a plain pickle.Unpickler instead, as training.legacy does.
    """

    def find_class(self, module, name):
        module, name = _python3_name(module, name)
        if (module, name) in SAFE_REPLACEMENTS:
            return SAFE_REPLACEMENTS[(module, name)]
        if (module, name) in SAFE_GLOBALS:
            return super().find_class(module, name)
        if module == 'torch' and isinstance(torch.__dict__.get(name), torch.dtype):  # torch.float32 etc.
            return torch.__dict__[name]
        if module.startswith('torch.nn.modules.'):
            return _torch_layer_class(module, name)
        raise UnsafePickleError(f'refusing to load {module}.{name}: network pickles do not contain it and it '
                                f'could run code; {TRUST_HINT}')

