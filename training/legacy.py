"""Loading network pickles: our own snapshots, and stylegan2-ada-pytorch pickles rebuilt onto our classes."""

# An official stylegan2-ada-pytorch pickle stores every network object as a call to
# `torch_utils.persistence._reconstruct_persistent_obj(meta)`, where `meta.module_src` is the full
# source of the module that defined the class, `meta.class_name` its bare name ('Generator') and
# `meta.state` the instance's attribute dict (`_init_args`, `_init_kwargs`, `_parameters`, `_buffers`,
# `_modules`, `training`, ...). The original loader executes `module_src`. We do not: while unpickling,
# every object of a class we know is kept as a `PickledObject` (its class name and raw state, nothing
# run), and afterwards each top-level network is constructed by OUR class from the pickled
# `_init_kwargs` and filled with the pickled parameters and buffers, strictly by name and shape.
#
# Nothing else in the file runs either: it is read by safe_unpickle.RestrictedUnpickler, which refuses
# every global that network pickles do not contain (a `__reduce__` calling os.system, say) before it
# is called, and persistence imports no module outside this package and rebuilds only persistent classes.
# Only allow_code_execution=True, for files you trust, lifts these limits, as the original loader did.
# For sharing, the weights-only format of training/export.py needs no unpickler at all.

import contextlib
import functools
import importlib
import os
import pickle

import click
import torch

import dnnlib
from torch_utils import persistence
from torch_utils import safe_unpickle

NETWORK_KEYS = ('G', 'D', 'G_ema', 'augment_pipe')
DATA_KEYS = NETWORK_KEYS + ('training_set_kwargs',)

# Classes of the official project that have a counterpart of the same name, constructor arguments,
# parameters and buffers here, by the module that defines them in both projects.
OFFICIAL_CLASSES = {
    'training.networks': frozenset([
        'FullyConnectedLayer', 'Conv2dLayer', 'MappingNetwork', 'SynthesisLayer', 'ToRGBLayer',
        'SynthesisBlock', 'SynthesisNetwork', 'Generator', 'DiscriminatorBlock', 'MinibatchStdLayer',
        'DiscriminatorEpilogue', 'Discriminator']),
    'training.augment': frozenset(['AugmentPipe']),
}

# A module source defining one of these is not stylegan2-ada-pytorch's networks.py, even if it
# reuses its class names (stylegan3's alias-free generator does).
FOREIGN_MARKERS = frozenset(['SynthesisInput'])

# The transitional-cGAN fork (Shahbazi et al., mshahbazi72/transitional-cGAN) keeps stylegan2-ada-pytorch's classes
# and constructor arguments and adds tensors: G's mapping `proj_embedd` and `transition` buffer; D's `out_uc` (its
# unconditional logit, always) and, with labels, `out_c` and `transition`. Its networks rebuild on ours with
# cond_transition (training/transition.py), the tensors renamed as ours name them.
FORK_MARKERS = {'Generator': 'mapping.proj_embedd.weight', 'Discriminator': 'b4.out_uc.weight'}

#----------------------------------------------------------------------------


class LegacyPickleError(persistence.PersistenceError):
    """A network pickle that cannot be loaded; the one-line message names the class or key and the fix."""


class PickledObject:
    """Stand-in for an official persistent object while unpickling: its class and raw state, nothing executed."""

    module_name = None  # Our module that defines the same class, e.g. 'training.networks' (set per subclass).
    class_name = None   # Bare class name, e.g. 'Generator' (set per subclass).

    def __setstate__(self, state):
        self.state = dict(state)  # The pickled attribute dict, as persistence hands it over.

    def __repr__(self):
        return f'PickledObject({self.module_name}.{self.class_name})'

#----------------------------------------------------------------------------
# Public API.


def load_network_pkl(f_or_path_or_url, allow_code_execution=False):
    """Load a network pickle -> dict with G, D, G_ema, augment_pipe, training_set_kwargs (absent ones None).

    Accepts an open binary file, a path or a URL (downloaded once into the dnnlib cache). Our own
    snapshots load as they were saved. Official stylegan2-ada-pytorch pickles are rebuilt onto our
    classes without executing the source code they embed. No code from the file runs: a pickle that
    names anything else (a function, a class that is not persistent, a module outside this package)
    is refused with persistence.UnsafePickleError, whose one-line message names the file and what was
    refused. `allow_code_execution=True` trusts the file in full, as the original loader always did:
    any global it names is imported and called, and the source of classes we have no counterpart for
    is executed (only for files you trust). Classes we know are mapped onto ours either way.
    """
    if isinstance(f_or_path_or_url, (str, os.PathLike)):
        name = os.fspath(f_or_path_or_url)
        with dnnlib.util.open_url(name) as f:
            return _load_named(f, allow_code_execution, name)
    return _load_named(f_or_path_or_url, allow_code_execution, getattr(f_or_path_or_url, 'name', None))


def _load_named(f, allow_code_execution, name):
    """_load(f), with the file's path or URL at the front of a refusal, so the one-line message names it."""
    try:
        return _load(f, allow_code_execution)
    except persistence.UnsafePickleError as error:
        if not isinstance(name, str):
            raise
        raise persistence.UnsafePickleError(f'{name}: {error}') from error


def _load(f, allow_code_execution):
    """Unpickle, rebuild the official objects on our classes, and check what the dict holds."""
    data = _unpickle(f, allow_code_execution)
    if not isinstance(data, dict):
        raise LegacyPickleError(f'network pickle holds a {type(data).__name__}, not a dict with '
                                f'{", ".join(DATA_KEYS)}')
    data = dict(data)
    rebuilt = dict()  # id(PickledObject) -> our module, so an object pickled under two keys stays one object.
    for key, value in list(data.items()):
        if isinstance(value, PickledObject):
            if id(value) not in rebuilt:
                rebuilt[id(value)] = rebuild_on_our_class(value, what=key)
            data[key] = rebuilt[id(value)]
    for key in DATA_KEYS:
        data.setdefault(key, None)
    _check_contents(data)
    if data['training_set_kwargs'] is not None:  # The official loop stores a plain dict.
        data['training_set_kwargs'] = dnnlib.EasyDict(data['training_set_kwargs'])
    return data


def rebuild_on_our_class(pickled, what=None):
    """Construct our class for a PickledObject from its `_init_kwargs` and copy its tensors in by name."""
    cls = our_class(pickled.module_name, pickled.class_name)
    state, tensors = from_transitional_fork(pickled.class_name, pickled.state, list(state_tensors(pickled.state)))
    try:
        return persistence.rebuild_from_state(cls, state, tensors=tensors, what=what or pickled.class_name)
    except LegacyPickleError:
        raise
    except persistence.PersistenceError as error:
        raise LegacyPickleError(str(error)) from error.__cause__


def from_transitional_fork(class_name, state, tensors):
    """(state, tensors) of a top-level network as ours builds and names it: a transitional-cGAN fork's Generator or
    Discriminator (FORK_MARKERS) gets cond_transition and our tensor names; anything else is returned as given."""
    names = {name for name, _ in tensors}
    if FORK_MARKERS.get(class_name) not in names:
        return state, tensors
    kwargs = dict(state.get('_init_kwargs') or {})
    if class_name == 'Generator':
        kwargs['mapping_kwargs'] = dict(kwargs.get('mapping_kwargs') or {}, cond_transition=True)
        renames = (('mapping.proj_embedd.', 'mapping.embed_proj.'),)
    elif 'b4.out_c.weight' in names:  # A conditional D: both logits.
        kwargs['cond_transition'] = True
        renames = (('b4.out_uc.', 'b4.out_uncond.'), ('b4.out_c.', 'b4.out.'))
    else:  # Without labels its unconditional logit is the only one: our `out`.
        renames = (('b4.out_uc.', 'b4.out.'),)

    def ours(name):
        for theirs, our_name in renames:
            if name.startswith(theirs):
                return our_name + name[len(theirs):]
        return name
    return dict(state, _init_kwargs=kwargs), [(ours(name), tensor) for name, tensor in tensors]


def our_class(module_name, class_name):
    """Our class that rebuilds an official one: `class_name` looked up in our module `module_name`."""
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise LegacyPickleError(f'{module_name} defines no class {class_name}; cannot rebuild it from the pickle')
    return cls


def state_tensors(state, prefix=''):
    """(dotted name, tensor) for every parameter and buffer in a pickled module state, recursively."""
    for key in ('_parameters', '_buffers'):
        for name, tensor in (state.get(key) or {}).items():
            if tensor is not None:
                yield prefix + name, tensor
    for child_name, child in (state.get('_modules') or {}).items():
        if isinstance(child, PickledObject):
            yield from state_tensors(child.state, f'{prefix}{child_name}.')
        elif isinstance(child, torch.nn.Module):
            for name, tensor in list(child.named_parameters()) + list(child.named_buffers()):
                yield f'{prefix}{child_name}.{name}', tensor

#----------------------------------------------------------------------------
# Unpickling.


def official_class(meta):
    """Our class for an object of an official pickle, or None: persistence's default resolver.

    This is what lets a plain `pickle.load` of a stylegan2-ada-pytorch snapshot work without running the
    source code embedded in it: persistence rebuilds each known object on our class from its pickled
    constructor arguments and tensors. Objects of classes we do not know are left to persistence's
    other rules (which refuse them unless source execution is allowed).
    """
    if meta.get('module_name'):
        return None
    class_name = str(meta.get('class_name', '')).rsplit('.', 1)[-1]
    module_src = meta.get('module_src')
    module_name = _OfficialClassResolver._our_module(class_name, _names_defined_by(module_src))
    return None if module_name is None else our_class(module_name, class_name)


@functools.lru_cache(maxsize=8)
def _names_defined_by(module_src):
    return persistence.defined_names(module_src) if isinstance(module_src, str) else frozenset()


def _refuse_tensorflow(module):
    """A readable message for TensorFlow-era pickles instead of a refused or missing module."""
    if module.startswith('dnnlib.tflib'):
        raise LegacyPickleError('this is a TensorFlow-era StyleGAN pickle, which is not supported; convert it '
                                'first with legacy.py of stylegan2-ada-pytorch (convert_network_pickle)')


class _Unpickler(safe_unpickle.RestrictedUnpickler):
    """Network pickles: only the globals such files contain (safe_unpickle.SAFE_GLOBALS)."""

    def find_class(self, module, name):
        _refuse_tensorflow(module)
        return super().find_class(module, name)


class _TrustingUnpickler(pickle.Unpickler):
    """allow_code_execution=True: the caller trusts the file, so any global it names is imported."""

    def find_class(self, module, name):
        _refuse_tensorflow(module)
        return super().find_class(module, name)


def _unpickle(f, allow_code_execution):
    resolver = _OfficialClassResolver(allow_code_execution)
    with persistence.class_resolver(resolver, rebuild=False):
        if allow_code_execution:
            with persistence.allow_source_execution():
                return _TrustingUnpickler(f).load()
        return _Unpickler(f).load()


class _OfficialClassResolver:
    """Tells persistence which class rebuilds each object of an official pickle (see class_resolver)."""

    def __init__(self, allow_code_execution):
        self.allow_code_execution = allow_code_execution
        self.names_in_source = dict()   # module_src -> names it defines, parsed once per load.
        self.stand_ins = dict()         # (our module, class name) -> PickledObject subclass.

    def __call__(self, meta):
        if meta.get('module_name'):
            return None  # Written by us: persistence imports the named module.
        class_name = str(meta.get('class_name', '')).rsplit('.', 1)[-1]
        defined = self._defined_names(meta.get('module_src'))
        module_name = self._our_module(class_name, defined)
        if module_name is not None:
            return self._stand_in(module_name, class_name)
        if self.allow_code_execution:
            return None  # persistence executes the embedded source.
        raise LegacyPickleError(
            f'network pickle contains class {class_name!r}, which this package cannot rebuild without running the '
            f'source code embedded in the pickle; if you trust the file, pass allow_code_execution=True to '
            f'training.legacy.load_network_pkl()')

    def _defined_names(self, module_src):
        if not isinstance(module_src, str):
            return frozenset()
        if module_src not in self.names_in_source:
            self.names_in_source[module_src] = persistence.defined_names(module_src)
        return self.names_in_source[module_src]

    @staticmethod
    def _our_module(class_name, defined):
        if class_name not in defined or defined & FOREIGN_MARKERS:
            return None
        for module_name, class_names in OFFICIAL_CLASSES.items():
            if class_name in class_names:
                return module_name
        return None

    def _stand_in(self, module_name, class_name):
        key = (module_name, class_name)
        if key not in self.stand_ins:
            attrs = dict(module_name=module_name, class_name=class_name)
            self.stand_ins[key] = type(f'Pickled{class_name}', (PickledObject,), attrs)
        return self.stand_ins[key]


#----------------------------------------------------------------------------
# Validation.


def _check_contents(data):
    for key in NETWORK_KEYS:
        value = data[key]
        if value is not None and not isinstance(value, torch.nn.Module):
            raise LegacyPickleError(f'network pickle: {key} is a {type(value).__name__}, not a torch module')
    if all(data[key] is None for key in ('G', 'G_ema', 'D')):
        raise LegacyPickleError(f'network pickle holds none of G, G_ema, D (keys: {sorted(map(str, data))})')
    if data['training_set_kwargs'] is not None and not isinstance(data['training_set_kwargs'], dict):
        raise LegacyPickleError(f'network pickle: training_set_kwargs is a '
                                f'{type(data["training_set_kwargs"]).__name__}, not a dict')


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__



#----------------------------------------------------------------------------
# Command line: python -m training.legacy --source=OFFICIAL.pkl --dest=OURS.pkl


def check_dest(source, dest, overwrite, example):
    """One-line click errors for a --dest that is a folder, lies under a file, is the source itself, or exists
    without --overwrite."""
    if os.path.isdir(dest):
        raise click.BadParameter(f'{dest} is a folder; give a file name such as {example}', param_hint='--dest')
    problem = dnnlib.util.output_dir_problem(os.path.dirname(os.path.abspath(dest)))
    if problem is not None:
        raise click.BadParameter(f'cannot write {dest}: {problem}', param_hint='--dest')
    if os.path.exists(source) and os.path.exists(dest) and os.path.samefile(source, dest):
        raise click.BadParameter(f'{dest} is the source file; choose another name', param_hint='--dest')
    if os.path.exists(dest) and not overwrite:
        raise click.BadParameter(f'{dest} exists; pass --overwrite to replace it', param_hint='--dest')


@contextlib.contextmanager
def writing_dest(dest):
    """Create --dest's folder, then run the block that writes --dest atomically.

    A full disk or a read-only place (dnnlib.util.WriteError) becomes one click error line naming the file;
    an earlier --dest stays as it was and no temporary file is left.
    """
    try:
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        yield
    except OSError as error:
        problem = dnnlib.util.write_error(error, dest)
        if problem is None:
            raise
        raise click.ClickException(str(problem)) from None


@click.command()
@click.option('--source', help='Network pickle to convert (path or URL)', required=True, metavar='PATH')
@click.option('--dest',   help='Pickle to write, with our classes', required=True, metavar='FILE')
@click.option('--overwrite', help='Replace --dest if it exists', is_flag=True)
def convert_network_pickle(source, dest, overwrite):
    """Re-save an official stylegan2-ada-pytorch pickle with this package's classes.

    The result loads with a plain pickle.load() wherever this package is installed. Nothing from the
    source file runs during the conversion: its embedded code is not executed, and a file that names
    anything network pickles do not contain is refused. For sharing, prefer the weights-only format
    (python -m training.export).

    \b
    python -m training.legacy --source=ffhq.pkl --dest=ffhq-ours.pkl
    """
    check_dest(source, dest, overwrite, example='network.pkl')
    try:
        data = load_network_pkl(source)
    except persistence.UnsafePickleError as error:  # Its message already names the file.
        raise click.ClickException(_first_line(error)) from error
    except Exception as error:  # Unpickling a damaged or foreign file raises almost any type.
        raise click.ClickException(f'{source}: cannot load network pickle ({_first_line(error)})') from error
    with writing_dest(dest):
        with dnnlib.util.atomic_write(dest, 'wb') as f:
            pickle.dump(data, f)
    click.echo(f'Wrote {dest} ({", ".join(key for key in NETWORK_KEYS if data[key] is not None)})')


if __name__ == '__main__':
    convert_network_pickle()  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
