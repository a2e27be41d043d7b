"""Pickling of networks together with their constructor arguments and source, in stylegan2-ada-pytorch's format.

A class decorated with `@persistent_class` pickles as a call to `_reconstruct_persistent_obj(meta)`,
where meta = {type: 'class', version: 4, module_src, class_name, state}. stylegan2-ada-pytorch
writes the same meta, so its snapshot pickles resolve to this module's function. Unpickling looks
for the class in this order, and never runs pickled source code unless asked to:

1. our own pickles name their module (`module_name`); when it imports, the object is restored as is;
2. a class name that a persistent class of this package carries (official pickles: `Generator`,
   `SynthesisLayer`, ...) is rebuilt from the pickled constructor arguments, and its parameters and
   buffers are copied in by name, so official networks run on our code;
3. otherwise, only inside `with allow_code_execution():`, the pickled source is executed as a fresh
   module and the class taken from it (the way to load a network whose code is gone);
4. otherwise unpickling stops with an error naming the class.
"""

import contextlib
import copy
import hashlib
import importlib
import inspect
import pickle
import sys
import threading
import types

import torch

import dnnlib

#----------------------------------------------------------------------------

_version = 4                    # Meta format version; stylegan2-ada-pytorch writes 4 as well.
_known_classes = dict()         # Class name -> our persistent class (filled by the decorator at import).
_decorators = set()             # Every class the decorator produced.
_import_hooks = []              # Callables meta -> meta, applied before reconstruction.
_exec_modules = dict()          # Source hash -> module made from pickled source (only with permission).
_permission = threading.local() # Depth of `allow_code_execution` blocks in this thread.

# Modules whose persistent classes official pickles name. They sit above torch_utils, so they are
# imported by name, and only when a pickle names a class that is not registered yet.
_provider_modules = ['training.networks', 'training.augment']

#----------------------------------------------------------------------------

def persistent_class(orig_class):
    """Class decorator: instances pickle with their constructor arguments and defining module's source."""
    assert isinstance(orig_class, type)
    if is_persistent(orig_class):
        return orig_class
    module = sys.modules[orig_class.__module__]
    module_src = _module_source(module)

    class Decorator(orig_class):
        _orig_module_name = module.__name__
        _orig_module_src = module_src
        _orig_class_name = orig_class.__name__

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._init_args = copy.deepcopy(args)
            self._init_kwargs = copy.deepcopy(kwargs)
            assert isinstance(self._init_kwargs, dict)

        @property
        def init_args(self):
            return copy.deepcopy(self._init_args)

        @property
        def init_kwargs(self):
            return dnnlib.EasyDict(copy.deepcopy(self._init_kwargs))

        def __reduce__(self):
            fields = list(super().__reduce__())
            fields += [None] * max(3 - len(fields), 0)
            if fields[0] is not _reconstruct_persistent_obj:
                meta = dict(type='class', version=_version, module_src=self._orig_module_src,
                            class_name=self._orig_class_name, state=fields[2],
                            module_name=self._orig_module_name)
                fields[0] = _reconstruct_persistent_obj
                fields[1] = (meta,)
                fields[2] = None
            return tuple(fields)

    Decorator.__name__ = orig_class.__name__
    Decorator.__qualname__ = orig_class.__qualname__
    Decorator.__module__ = orig_class.__module__
    Decorator.__doc__ = orig_class.__doc__
    _decorators.add(Decorator)
    # The first definition of a name wins, so a test module cannot shadow the networks' classes.
    _known_classes.setdefault(orig_class.__name__, Decorator)
    return Decorator


def is_persistent(obj):
    """True for a persistent class or an instance of one."""
    try:
        if obj in _decorators:
            return True
    except TypeError:
        pass
    return type(obj) in _decorators


def import_hook(hook):
    """Register `hook(meta) -> meta`, applied to every persistent object's meta before it is rebuilt.

    Use it to rename classes or patch constructor arguments of old pickles.
    """
    assert callable(hook)
    _import_hooks.append(hook)


@contextlib.contextmanager
def allow_code_execution():
    """Within this block, unpickling may execute the source code stored in a pickle (trusted files only)."""
    _permission.depth = getattr(_permission, 'depth', 0) + 1
    try:
        yield
    finally:
        _permission.depth -= 1


def code_execution_allowed():
    return getattr(_permission, 'depth', 0) > 0

#----------------------------------------------------------------------------

def _reconstruct_persistent_obj(meta):
    """Unpickling entry point (its name and meta format are what stylegan2-ada-pytorch pickles refer to)."""
    meta = dnnlib.EasyDict(meta)
    meta.state = dnnlib.EasyDict(meta.state) if isinstance(meta.state, dict) else meta.state
    for hook in _import_hooks:
        meta = hook(meta)
        assert meta is not None
    if meta.type != 'class':
        raise pickle.UnpicklingError(f'unknown persistent object type "{meta.type}"')
    if meta.version not in (1, 2, 3, 4):
        raise pickle.UnpicklingError(f'unsupported persistent object version {meta.version}')

    own_class = _own_class(meta)
    if own_class is not None:
        return _restore(own_class, meta.state)
    if meta.class_name not in _known_classes:
        _import_providers()
    if meta.class_name in _known_classes:
        return _rebuild(_known_classes[meta.class_name], meta.state)
    if code_execution_allowed():
        module = _module_from_source(meta.module_src)
        return _restore(getattr(module, meta.class_name), meta.state)
    raise pickle.UnpicklingError(
        f'the pickle holds class "{meta.class_name}", which this package does not provide; loading it would '
        f'execute the source code stored in the pickle: only for a trusted file, load it inside '
        f'torch_utils.persistence.allow_code_execution()')


def _own_class(meta):
    """Our class when the pickle was written by this package and the module still provides it."""
    module_name = meta.get('module_name', None)
    if module_name is None:
        return None
    try:
        module = __import__(module_name, fromlist=['_'])
    except ImportError:
        return None
    cls = getattr(module, meta.class_name, None)
    return cls if is_persistent(cls) else None


def _import_providers():
    for name in _provider_modules:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _restore(cls, state):
    obj = cls.__new__(cls)
    setstate = getattr(obj, '__setstate__', None)
    if callable(setstate):
        setstate(state)
    else:
        obj.__dict__.update(state)
    return obj


def _rebuild(cls, state):
    """Construct `cls` from the pickled constructor arguments and copy the pickled tensors into it by name."""
    args = state.get('_init_args', ())
    kwargs = state.get('_init_kwargs', {})
    try:
        obj = cls(*args, **kwargs)
    except TypeError as err:
        raise pickle.UnpicklingError(f'cannot rebuild "{cls.__name__}" from the pickled arguments: {err}') from None
    if not isinstance(obj, torch.nn.Module):
        obj.__dict__.update({k: v for k, v in state.items() if k not in obj.__dict__})
        return obj
    tensors = dict(_named_tensors_in_state(state))
    with torch.no_grad():
        for name, dst in list(obj.named_parameters()) + list(obj.named_buffers()):
            if name not in tensors:
                raise pickle.UnpicklingError(f'the pickled "{cls.__name__}" has no tensor "{name}" that ours needs')
            src = tensors[name]
            if src.shape != dst.shape:
                raise pickle.UnpicklingError(f'the pickled "{cls.__name__}" has "{name}" of shape {list(src.shape)}, '
                                             f'ours expects {list(dst.shape)}')
            dst.copy_(src.detach())
            dst.requires_grad_(src.requires_grad)
    obj.train(state.get('training', True))
    return obj


def _named_tensors_in_state(state, prefix=''):
    """(name, tensor) for the parameters and buffers held in a pickled module's state, recursively."""
    for key in ('_parameters', '_buffers'):
        for name, tensor in (state.get(key) or {}).items():
            if tensor is not None:
                yield prefix + name, tensor
    for name, child in (state.get('_modules') or {}).items():
        if isinstance(child, torch.nn.Module):
            for sub_name, tensor in list(child.named_parameters()) + list(child.named_buffers()):
                yield f'{prefix}{name}.{sub_name}', tensor

#----------------------------------------------------------------------------

def _module_source(module):
    try:
        return inspect.getsource(module)
    except (OSError, TypeError):
        return None


def _module_from_source(module_src):
    if module_src is None:
        raise pickle.UnpicklingError('the pickle stores no source code for its class')
    key = hashlib.sha256(module_src.encode('utf-8')).hexdigest()[:16]
    module = _exec_modules.get(key, None)
    if module is None:
        module = types.ModuleType(f'_persistence_module_{key}')
        sys.modules[module.__name__] = module  # So that classes in it can be pickled again.
        exec(compile(module_src, module.__name__, 'exec'), module.__dict__)  # pylint: disable=exec-used
        _exec_modules[key] = module
    return module

#----------------------------------------------------------------------------
