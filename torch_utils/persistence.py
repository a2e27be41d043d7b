"""Pickling of objects together with the source code of their defining module (stylegan2-ada pickle format)."""

# A class decorated with @persistent_class pickles its instances as a call to
# `_reconstruct_persistent_obj(meta)`, where meta is a plain dict:
#
#   type        'class'
#   version     format number (we write 6, the number stylegan2-ada-pytorch writes and asserts)
#   module_src  full source text of the module that defined the class
#   class_name  name of the class inside that module
#   state       the instance's __dict__ (nested persistent objects are pickled the same way)
#   module_name importable name of that module (written by us only; official pickles lack it)
#
# Official stylegan2-ada-pytorch pickles name `torch_utils.persistence._reconstruct_persistent_obj`,
# so that function is the entry point for them too. Their loader executes `module_src`. Ours does not,
# unless the caller opts in: see `_resolve_class` for the order in which a class is looked up. A pickle
# may name only modules of TRUSTED_PACKAGES (or of trust_modules()) or modules already imported, and
# only classes made by @persistent_class, since importing a module or filling an arbitrary class with
# pickled state runs code. RestrictedUnpickler (torch_utils/safe_unpickle.py) extends the same rule to every global
# a pickle names, so that a network pickle loads without running anything from the file.

import ast
import contextlib
import contextvars
import copy
import hashlib
import importlib
import inspect
import pickle
import sys
import types

import torch

import dnnlib

#----------------------------------------------------------------------------

WRITE_VERSION = 6               # Version written into new pickles (what the official loader asserts).
READ_VERSIONS = (4, 5, 6)       # Versions whose meta layout is the one above.
TRUSTED_PACKAGES = ('training', 'torch_utils', 'metrics', 'dnnlib')  # This project's own packages.

_decorators = set()             # Every class produced by persistent_class().
_decorator_of = dict()          # Original class -> its persistent subclass, so each is wrapped once.
_import_hooks = []              # Permanent meta rewriters registered with import_hook().
_source_of_module = dict()      # Module name -> source text.
_module_of_source = dict()      # Source text -> module (modules we know, or that we executed).
_moved_modules = dict()         # Module name written into older pickles -> the module that holds its classes now.

# Scoped settings for loading, set only by the context managers below (no process-wide flags).
_class_resolvers = contextvars.ContextVar('persistence_class_resolvers', default=())
_source_execution_allowed = contextvars.ContextVar('persistence_source_execution', default=False)
_trusted_modules = contextvars.ContextVar('persistence_trusted_modules', default=())


# The errors and the restricted unpickler live in the security boundary, torch_utils/safe_unpickle.py; their
# names stay importable from here.
from torch_utils.safe_unpickle import TRUST_HINT, PersistenceError, UnsafePickleError  # noqa: E402,F401

#----------------------------------------------------------------------------
# Public API.

def is_persistent(obj):
    """True for a class made by @persistent_class and for instances of such classes."""
    if isinstance(obj, type) and obj in _decorators:
        return True
    return type(obj) in _decorators


def import_hook(hook):
    """Register `hook(meta) -> meta`, run on every persistent object before its class is looked up.

    Hooks may patch old meta (e.g. rewrite module_src or state) and must return the meta they were
    given or a replacement. Registration lasts for the process, as in stylegan2-ada-pytorch.
    """
    if not callable(hook):
        raise TypeError(f'import_hook: expected a callable, got {type(hook).__name__}')
    _import_hooks.append(hook)


@contextlib.contextmanager
def class_resolver(resolver, rebuild=False):
    """Within the block, ask `resolver(meta)` first which class rebuilds each persistent object.

    `meta` is a dnnlib.EasyDict with the keys listed at the top of this file; `meta.state` is the
    instance's attribute dict (for an nn.Module: _parameters, _buffers, _modules, _init_kwargs, ...).
    The resolver returns a class, or None to let the next resolver (then the default rules) decide.
    No source from the pickle is executed. With rebuild=False the object is made with
    `cls.__new__(cls)` and given the pickled state as is (`__setstate__` or a __dict__ update); with
    rebuild=True it is constructed by our code and only its tensors come from the pickle
    (see `rebuild_from_state`), so the pickled attribute layout need not match ours.

    This is how training/legacy.py loads official stylegan2-ada-pytorch pickles onto our classes:
    official meta has no module_name, so a resolver recognises the module by `class_name` and by
    `defined_names(meta.module_src)` (parsed, not executed). Resolvers nest; the innermost is asked first.

        def official_classes(meta):
            if 'module_name' not in meta and meta.class_name in OUR_CLASSES:
                return OUR_CLASSES[meta.class_name]
            return None
        with persistence.class_resolver(official_classes, rebuild=True):
            data = pickle.load(f)
    """
    if not callable(resolver):
        raise TypeError(f'class_resolver: expected a callable, got {type(resolver).__name__}')
    token = _class_resolvers.set(((resolver, bool(rebuild)),) + _class_resolvers.get())
    try:
        yield
    finally:
        _class_resolvers.reset(token)


@contextlib.contextmanager
def allow_source_execution():
    """Within the block, a pickle's embedded module source may be executed to rebuild its classes.

    This trusts the file in full, as stylegan2-ada-pytorch always did: the module a pickle names is
    imported whatever package it belongs to, and a class there need not be persistent. Use it only for
    files you trust and whose classes no resolver or installed module provides.
    """
    token = _source_execution_allowed.set(True)
    try:
        yield
    finally:
        _source_execution_allowed.reset(token)


allow_code_execution = allow_source_execution  # Earlier name of the same switch.


@contextlib.contextmanager
def trust_modules(*package_names):
    """Within the block, pickles may name modules of these packages too ('mypkg' also trusts 'mypkg.nets').

    Outside TRUSTED_PACKAGES a module is imported for a pickle only inside this block; one already
    imported is used either way, since using it runs nothing new. Classes must still be persistent.
    """
    for name in package_names:
        if not isinstance(name, str) or not name or name.startswith('.'):
            raise ValueError(f'trust_modules: expected absolute package names, got {name!r}')
    token = _trusted_modules.set(_trusted_modules.get() + tuple(package_names))
    try:
        yield
    finally:
        _trusted_modules.reset(token)


def module_moved(old_name, new_name):
    """Pickles whose meta names module `old_name` find their classes in module `new_name` instead.

    For a package that reorganises its modules: register the old names in the package's __init__,
    which Python imports before it finds that the old module is gone, so a plain pickle.load works too.
    """
    _moved_modules[old_name] = new_name


def defined_names(module_src):
    """Names of the top-level classes and functions that `module_src` defines, found by parsing only."""
    try:
        tree = ast.parse(module_src)
    except SyntaxError:
        return frozenset()
    kinds = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return frozenset(node.name for node in tree.body if isinstance(node, kinds))

#----------------------------------------------------------------------------
# The decorator.

def persistent_class(orig_class):
    """Class decorator: instances remember their constructor arguments and pickle with their module's source.

    The arguments are kept as `obj.init_args` / `obj.init_kwargs` (deep copies), so an object can be
    rebuilt from them (`type(obj)(*obj.init_args, **obj.init_kwargs)`), e.g. to export or transfer it.
    """
    if not isinstance(orig_class, type):
        raise TypeError(f'persistent_class: expected a class, got {type(orig_class).__name__}')
    if is_persistent(orig_class):
        return orig_class
    if orig_class in _decorator_of:
        return _decorator_of[orig_class]
    module = sys.modules.get(orig_class.__module__)
    if module is None:
        raise ValueError(f'persistent_class: module {orig_class.__module__!r} of {orig_class.__name__} is not imported')
    module_src = _module_source(module)
    class_name = orig_class.__name__

    class Persistent(orig_class):
        _orig_module_src = module_src
        _orig_module_name = module.__name__
        _orig_class_name = class_name

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            _check_pickleable(class_name, args, kwargs)
            # Same attribute names as stylegan2-ada-pytorch, so official state dicts fit.
            self._init_args = copy.deepcopy(args)
            self._init_kwargs = copy.deepcopy(kwargs)

        @property
        def init_args(self):
            return copy.deepcopy(self._init_args)

        @property
        def init_kwargs(self):
            return dnnlib.EasyDict(copy.deepcopy(self._init_kwargs))

        def __reduce__(self):
            meta = dict(type='class', version=WRITE_VERSION, module_src=self._orig_module_src,
                        class_name=self._orig_class_name, state=_get_state(self),
                        module_name=self._orig_module_name)
            return (_reconstruct_persistent_obj, (meta,))

    Persistent.__name__ = class_name
    Persistent.__qualname__ = orig_class.__qualname__
    Persistent.__module__ = orig_class.__module__
    Persistent.__doc__ = orig_class.__doc__
    _decorators.add(Persistent)
    _decorator_of[orig_class] = Persistent
    return Persistent


def _get_state(obj):
    # Python >= 3.11 gives every object __getstate__; nn.Module defines its own on all versions.
    getstate = getattr(obj, '__getstate__', None)
    state = getstate() if getstate is not None else obj.__dict__.copy()
    return dict(state) if state is not None else {}


def _check_pickleable(class_name, args, kwargs):
    """Fail at construction, not at the first snapshot, when a constructor argument cannot be pickled."""
    def strip(value):
        if isinstance(value, (list, tuple, set)):
            return [strip(item) for item in value]
        if isinstance(value, dict):
            return [[strip(key), strip(item)] for key, item in value.items()]
        if value is None or isinstance(value, (str, bytes, bytearray, bool, int, float, complex)):
            return None
        if type(value).__module__.split('.')[0] in ('torch', 'numpy') or is_persistent(value):
            return None  # Tensors, arrays and persistent objects pickle by their own means.
        return value
    for where, value in [(f'argument {i}', arg) for i, arg in enumerate(args)] + list(kwargs.items()):
        try:
            pickle.dumps(strip(value))
        except Exception as error:
            raise TypeError(f'{class_name}: constructor argument {where!r} cannot be pickled ({error}); '
                            f'persistent objects keep their arguments') from None

#----------------------------------------------------------------------------
# Loading.

def _reconstruct_persistent_obj(meta):
    """Rebuild one persistent object from its meta dict (the function every such pickle calls)."""
    meta = dnnlib.EasyDict(meta)
    meta.state = dnnlib.EasyDict(meta.state)
    for hook in _import_hooks:
        meta = hook(meta)
        if meta is None:
            raise PersistenceError(f'import hook {getattr(hook, "__name__", hook)!r} returned None instead of the meta dict')
    if meta.get('type') != 'class':
        raise PersistenceError(f'persistent object of type {meta.get("type")!r} is not supported; only "class" is')
    if meta.get('version') not in READ_VERSIONS:
        raise PersistenceError(f'persistent object {meta.get("class_name")!r} has format version '
                               f'{meta.get("version")!r}; supported versions are {list(READ_VERSIONS)}')
    cls, rebuild = _resolve_class(meta)
    if rebuild:
        return rebuild_from_state(cls, meta.state)
    obj = cls.__new__(cls)
    setstate = getattr(obj, '__setstate__', None)
    if callable(setstate):
        setstate(dict(meta.state))
    else:
        obj.__dict__.update(meta.state)
    return obj


def rebuild_from_state(cls, state, tensors=None, what=None):
    """Construct `cls(*state['_init_args'], **state['_init_kwargs'])` and copy the pickled tensors into it.

    For an nn.Module every parameter and buffer is taken by name from `tensors` (default: those in the
    pickled `_parameters`, `_buffers` and `_modules`); a tensor missing on either side, or of another
    shape, is an error. Construction draws initial weights, so it runs on a forked RNG: loading leaves
    the caller's random state alone. `what` (e.g. 'G_ema') prefixes error messages.
    """
    name = getattr(cls, '__name__', repr(cls))
    prefix = f'{what}: ' if what else ''
    try:
        with torch.random.fork_rng(devices=[]):
            obj = cls(*state.get('_init_args', ()), **state.get('_init_kwargs', {}))
    except Exception as error:
        first_line = (str(error).strip().splitlines() or [''])[0]
        raise PersistenceError(f'{prefix}cannot build {name} from the pickled constructor arguments '
                               f'({type(error).__name__}: {first_line})') from error
    if not isinstance(obj, torch.nn.Module):
        return obj
    pickled = dict(_pickled_tensors(state) if tensors is None else tensors)
    ours = dict(list(obj.named_parameters()) + list(obj.named_buffers()))
    missing = sorted(set(ours) - set(pickled))
    extra = sorted(set(pickled) - set(ours))
    if missing or extra:
        raise PersistenceError(f'{prefix}pickled {name} does not match ours (absent from the pickle: '
                               f'{_few(missing)}; unknown to us: {_few(extra)})')
    with torch.no_grad():
        for key, dst in ours.items():
            src = pickled[key]
            if tuple(src.shape) != tuple(dst.shape):
                raise PersistenceError(f'{prefix}"{key}" has shape {list(src.shape)} in the pickle, '
                                       f'{list(dst.shape)} in our {name}')
            dst.copy_(src)
            if isinstance(dst, torch.nn.Parameter):
                dst.requires_grad_(bool(src.requires_grad))
    obj.train(bool(state.get('training', True)))
    return obj


def _few(names, limit=5):
    """At most `limit` names for an error message, then how many more."""
    if not names:
        return 'none'
    shown = ', '.join(names[:limit])
    return shown if len(names) <= limit else f'{shown} and {len(names) - limit} more'


def _pickled_tensors(state):
    """(name, tensor) for the parameters and buffers in a pickled module's attribute dict, recursively."""
    for key in ('_parameters', '_buffers'):
        for name, tensor in (state.get(key) or {}).items():
            if tensor is not None:
                yield name, tensor
    for child_name, child in (state.get('_modules') or {}).items():
        if isinstance(child, torch.nn.Module):
            for name, tensor in list(child.named_parameters()) + list(child.named_buffers()):
                yield f'{child_name}.{name}', tensor


# Resolvers used when a pickle from another project (no module_name in its meta) is unpickled with a
# plain pickle.load, outside any class_resolver() block. They live above torch_utils, so they are named
# here as strings and imported only then, like objects a config names; each maps the classes it knows
# onto ours (rebuilt from their constructor arguments) and passes on everything else.
DEFAULT_RESOLVER_NAMES = ('training.legacy.official_class',)


def _default_resolvers():
    resolvers = []
    for name in DEFAULT_RESOLVER_NAMES:
        try:
            resolvers.append((dnnlib.util.get_obj_by_name(name), True))
        except ImportError:
            pass  # That part of the package is not installed; the other lookups still apply.
    return tuple(resolvers)


def _resolve_class(meta):
    """(class, rebuild) for `meta`, looked up in this order; the pickle's source runs only in step 4.

    1. resolvers active through class_resolver() (innermost first); when none is active and the pickle
       comes from another project, the DEFAULT_RESOLVER_NAMES (official stylegan2-ada classes -> ours);
    2. meta.module_name, when that module is already imported or belongs to a trusted package and is
       importable ('__main__' only when its source matches, since every script is '__main__'), or the
       module it moved to (module_moved); a module of ours that changed since is used as it is now;
    3. a module we already know with exactly this source (e.g. one executed earlier in this process);
    4. inside allow_source_execution(): execute module_src in a fresh module (once per source).
    Otherwise a PersistenceError says how to load the file. Outside allow_source_execution() the class
    found in steps 2-3 must be a persistent class (see _persistent_version).
    """
    class_name = meta.get('class_name')
    module_src = meta.get('module_src')
    resolvers = _class_resolvers.get()
    if not resolvers and not meta.get('module_name'):
        resolvers = _default_resolvers()
    for resolver, rebuild in resolvers:
        cls = resolver(meta)
        if cls is not None:
            if not isinstance(cls, type):
                raise PersistenceError(f'class resolver returned {cls!r} for {class_name!r}, not a class')
            return cls, rebuild

    module = _import_named_module(meta.get('module_name'), module_src)
    if module is not None and not isinstance(module.__dict__.get(class_name), type):
        module = None  # The class was renamed or removed there since; try the pickled source.
    if module is None:
        module = _module_of_source.get(module_src)
    if module is None and _source_execution_allowed.get():
        module = _execute_source(module_src)
    if module is None:
        raise PersistenceError(_unresolved_message(meta))
    orig_class = module.__dict__.get(class_name)
    if not isinstance(orig_class, type):
        raise PersistenceError(f'module {module.__name__!r} defines no class {class_name!r}')
    return _persistent_version(orig_class, module), False


def _unresolved_message(meta):
    """Why no class was found for `meta`, and the two ways to load the file anyway."""
    module_name = meta.get('module_name')
    origin = f' from module {module_name!r}' if module_name else ''
    untrusted = ''
    if isinstance(module_name, str) and module_name not in sys.modules and not _is_trusted_module(module_name):
        untrusted = (f' (a pickle may not import {module_name!r}, which is outside this package; to allow '
                     f'it, unpickle inside torch_utils.persistence.trust_modules())')
    return (f'persistent object {meta.get("class_name")!r}{origin} embeds the source code of its module and no '
            f'installed module provides it{untrusted}; load networks with training.legacy.load_network_pkl(), '
            f'or, for a file you trust, unpickle inside torch_utils.persistence.allow_source_execution()')


def _persistent_version(orig_class, module):
    """The persistent class to rebuild an object with; any other class is refused unless the file is trusted.

    Rebuilding fills the object's attributes from the pickle, so an arbitrary class (subprocess.Popen
    with a pickled state, say) would let the file decide what later code does with it.
    """
    if is_persistent(orig_class):
        return orig_class
    if orig_class in _decorator_of:  # Made persistent earlier in this process, e.g. from trusted source.
        return _decorator_of[orig_class]
    if _source_execution_allowed.get():
        return persistent_class(orig_class)
    raise UnsafePickleError(f'refusing to load {module.__name__}.{orig_class.__name__}: not a persistent '
                            f'class (@persistent_class), so it may not be rebuilt from a pickle; {TRUST_HINT}')


def _is_trusted_module(module_name):
    trusted = TRUSTED_PACKAGES + _trusted_modules.get()
    return any(module_name == name or module_name.startswith(name + '.') for name in trusted)


def _import_named_module(module_name, module_src):
    """The module a pickle names, or None; imported only if it is trusted, since importing runs its code."""
    if not isinstance(module_name, str) or not module_name:
        return None
    if module_name == '__main__':
        module = sys.modules.get('__main__')
        return module if module is not None and _module_source(module, missing_ok=True) == module_src else None
    if isinstance(sys.modules.get(module_name), types.ModuleType):
        return sys.modules[module_name]  # Already imported: using it runs nothing new.
    if not (_is_trusted_module(module_name) or _source_execution_allowed.get()):
        return _moved_module(module_name)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and (module_name == error.name or module_name.startswith(error.name + '.')):
            return _moved_module(module_name)  # Importing its package may have just registered the move.
        raise  # It exists but one of its own imports is missing: say so.


def _moved_module(module_name):
    """The module that holds the classes of `module_name` now (registered by code, so trusted), or None."""
    new_name = _moved_modules.get(module_name)
    return None if new_name is None else importlib.import_module(new_name)


def _module_source(module, missing_ok=False):
    src = _source_of_module.get(module.__name__)
    if src is None:
        try:
            src = inspect.getsource(module)
        except (OSError, TypeError):
            if missing_ok:
                return None
            raise ValueError(f'persistent_class: cannot read the source of module {module.__name__!r}') from None
        _source_of_module[module.__name__] = src
        _module_of_source.setdefault(src, module)
    return src


def _execute_source(module_src):
    if not isinstance(module_src, str):
        raise PersistenceError('persistent object has no module source to execute')
    module_name = '_persistent_src_' + hashlib.sha256(module_src.encode('utf-8')).hexdigest()[:16]
    module = types.ModuleType(module_name)
    # Registered before executing, so @persistent_class inside the source finds its module and source.
    sys.modules[module_name] = module
    _source_of_module[module_name] = module_src
    _module_of_source[module_src] = module
    try:
        exec(compile(module_src, f'<pickled module {module_name}>', 'exec'), module.__dict__)  # pylint: disable=exec-used
    except BaseException:
        del sys.modules[module_name], _source_of_module[module_name], _module_of_source[module_src]
        raise
    return module

#----------------------------------------------------------------------------
