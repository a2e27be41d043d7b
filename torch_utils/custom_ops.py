"""Builds C++/CUDA extensions with ninja on first use (cached, safe across processes), checks each against its
reference on every device it runs on, or says once why it cannot be used.

SQUEEZEGAN_OPS chooses what happens when a kernel cannot be used (see ops_mode): 'auto' (the default) takes
the reference after one warning naming the op and why, 'cuda' raises KernelUnavailableError instead (no
silent slow path on a cluster), 'ref' never builds or calls a kernel.
"""

import contextlib
import glob
import hashlib
import inspect
import os
import re
import shutil
import warnings

import torch

try:
    import fcntl
except ImportError:  # Windows: torch's own lock file is the only guard there.
    fcntl = None

#----------------------------------------------------------------------------

VERBOSITY_LEVELS = ('none', 'brief', 'full')
verbosity = 'brief'         # 'none': silent, 'brief': one line per build, 'full': the compiler's output.

OPS_ENV = 'SQUEEZEGAN_OPS'
OPS_MODES = ('auto', 'cuda', 'ref')

_plugins = dict()           # Module name -> built module, or None when it cannot be built here.
_self_checks = dict()       # (module name, device) -> (module, whether it passed its self-check there).
_problems = dict()          # Module name or (module name, device) -> why the kernel is not used there.


class PluginUnavailableWarning(UserWarning):
    """A custom op could not be built; its callers fall back to the (slower) reference implementation."""


class PluginSelfCheckWarning(PluginUnavailableWarning):
    """A built custom op disagreed with its reference on a device; that device uses the reference."""


class SelfCheckError(AssertionError):
    """Raised by an op's self-check when its kernel and its reference disagree."""


class KernelUnavailableError(RuntimeError):
    """SQUEEZEGAN_OPS=cuda, and a kernel cannot be used: the one-line message names the op and why."""


class OpsModeError(ValueError):
    """SQUEEZEGAN_OPS holds a value other than auto, cuda or ref."""


def ops_mode(env=None):
    """The SQUEEZEGAN_OPS setting: 'auto' (default), 'cuda' or 'ref'; OpsModeError for anything else."""
    value = (os.environ if env is None else env).get(OPS_ENV, '')
    mode = value.strip().lower() or 'auto'
    if mode not in OPS_MODES:
        raise OpsModeError(f'{OPS_ENV}={value}: accepted values are {", ".join(OPS_MODES)}')
    return mode


def problem(module_name, device=None):
    """Why the kernel `module_name` is not used (on `device`, when given), or None when nothing went wrong."""
    if device is not None and (module_name, str(device)) in _problems:
        return _problems[(module_name, str(device))]
    return _problems.get(module_name)

#----------------------------------------------------------------------------

def get_plugin(module_name, sources, headers=None, source_dir=None, **build_kwargs):
    """The extension `module_name` built from `sources`, or None (after one warning) when it cannot be built.

    The first call in a process builds with ninja through torch.utils.cpp_extension.load, or loads a
    build cached under $TORCH_EXTENSIONS_DIR (PyTorch's default folder otherwise); later calls return
    the same module. Each build folder is named by a digest of the sources and headers, so edited
    sources rebuild and never mix with an old build. Processes building at once take turns on a file
    lock. `build_kwargs` go to cpp_extension.load (extra_cflags, extra_cuda_cflags, ...).
    """
    if verbosity not in VERBOSITY_LEVELS:
        raise ValueError(f'torch_utils.custom_ops.verbosity must be one of {", ".join(VERBOSITY_LEVELS)}; '
                         f'got {verbosity!r}')
    if module_name in _plugins:
        if _plugins[module_name] is None and ops_mode() == 'cuda':
            _refuse(module_name, _problems[module_name])
        return _plugins[module_name]

    headers = list(headers or [])
    sources = list(sources)
    if source_dir is not None:
        sources = [os.path.join(source_dir, name) for name in sources]
        headers = [os.path.join(source_dir, name) for name in headers]

    why = _build_problem(sources + headers)
    module = None
    if why is not None:
        _problems[module_name] = f'cannot be built here ({why})'
    else:
        module = _build(module_name, sources, headers, build_kwargs)
    _plugins[module_name] = module
    if module is None:
        _unusable(module_name, _problems[module_name])
    return module


def self_checked(module_name, plugin, device, self_check):
    """`plugin` if it passed `self_check(plugin, device)` on `device`, else None (after one warning).

    The check runs once per device, at the op's first use there, and compares the kernel with the
    reference path on a few small inputs; a mismatch or an error (say, no kernel image for this GPU)
    disables the op on that device, so a wrong kernel can never train silently.
    """
    key = (module_name, str(device))
    checked = _self_checks.get(key)
    if checked is None or checked[0] is not plugin:
        passed = True
        _problems.pop(key, None)
        try:
            self_check(plugin, torch.device(device))
        except Exception as error:  # pylint: disable=broad-except
            passed = False
            reason = _first_line(error) if isinstance(error, SelfCheckError) else f'{type(error).__name__}: {_first_line(error)}'
            _problems[key] = f'failed its self-check on {device} ({reason})'
        checked = _self_checks[key] = (plugin, passed)
        if not passed:
            _unusable(module_name, _problems[key], PluginSelfCheckWarning)
    elif not checked[1] and ops_mode() == 'cuda':
        _refuse(module_name, _problems[key])
    return plugin if checked[1] else None


def check_close(what, actual, expected, rtol, atol):
    """Raise SelfCheckError naming `what` unless |actual - expected| <= atol + rtol * |expected| everywhere."""
    actual = actual.detach().double()
    expected = expected.detach().double()
    if actual.shape != expected.shape:
        raise SelfCheckError(f'{what}: shape {list(actual.shape)}, expected {list(expected.shape)}')
    excess = (actual - expected).abs() - (atol + rtol * expected.abs())
    if not torch.isfinite(actual).all() or excess.max().item() > 0:
        error = (actual - expected).abs().nan_to_num(nan=float('inf')).max().item()
        raise SelfCheckError(f'{what}: max |difference| {error:.3g} from the reference, allowed {atol:g} + {rtol:g} * |reference|')


def extension_flags():
    """{'std': the C++ standard flag, 'nvcc': the nvcc flags} that torch.utils.cpp_extension builds extensions with here.

    For builds outside it that must compile what a GPU machine's first use compiles: the CI's compile check
    (.ci/compile_cuda.sh) and the CPU test build of the bindings (tests/ops_helpers.py). The standard is read
    from cpp_extension itself (PyTorch 2.13: c++20), so that it follows PyTorch.
    """
    from torch.utils import cpp_extension  # pylint: disable=import-outside-toplevel  # Slow (setuptools): builds only.
    standards = re.findall(r'-std=(c\+\+\d\d)', inspect.getsource(cpp_extension))
    std = f'-std={max(set(standards), key=standards.count)}' if standards else '-std=c++17'
    return {'std': std, 'nvcc': [*cpp_extension.COMMON_NVCC_FLAGS, std]}


def clean_builds(module_name):
    """Delete every cached build of `module_name` (e.g. after a CUDA or compiler upgrade)."""
    root = _build_root(module_name)
    for path in glob.glob(os.path.join(root, '*')):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(path)
    _plugins.pop(module_name, None)
    for key in [key for key in _self_checks if key[0] == module_name]:
        del _self_checks[key]
    for key in [key for key in _problems if key == module_name or (isinstance(key, tuple) and key[0] == module_name)]:
        del _problems[key]

#----------------------------------------------------------------------------

def _build_problem(paths):
    """Why these files cannot be built on this machine, or None when they probably can."""
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        return f'source file {missing[0]} does not exist'
    from torch.utils import cpp_extension  # pylint: disable=import-outside-toplevel  # Slow (setuptools): builds only.
    if not cpp_extension.is_ninja_available():
        return 'ninja is not installed; pip install ninja'
    compiler = os.environ.get('CXX', 'cl' if os.name == 'nt' else 'c++')
    if shutil.which(compiler) is None:
        return f'no C++ compiler "{compiler}" on PATH'
    if any(path.endswith('.cu') for path in paths):
        if torch.version.cuda is None:
            return f'this PyTorch {torch.__version__} is a CPU-only build'
        if not torch.cuda.is_available():
            return 'no CUDA device is available'
        if cpp_extension.CUDA_HOME is None:
            return 'nvcc was not found; set CUDA_HOME to the CUDA toolkit'
    return None


def _unusable(module_name, what, category=PluginUnavailableWarning):
    """The kernel cannot be used: an error under SQUEEZEGAN_OPS=cuda, else one warning (the reference runs)."""
    if ops_mode() == 'cuda':
        _refuse(module_name, what)
    warnings.warn(f'custom op "{module_name}" {what}; using the slower reference implementation '
                  f'({OPS_ENV}=cuda makes this an error, {OPS_ENV}=ref silences it)', category, stacklevel=4)


def _refuse(module_name, what):
    raise KernelUnavailableError(f'{OPS_ENV}=cuda: custom op "{module_name}" {what}')


def _first_line(error):
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _build_root(module_name):
    from torch.utils import cpp_extension  # pylint: disable=import-outside-toplevel  # Slow (setuptools): builds only.
    return cpp_extension._get_build_directory(module_name, verbose=False)  # pylint: disable=protected-access


def _digest(paths):
    digest = hashlib.sha256()
    for path in paths:
        digest.update(os.path.basename(path).encode('utf-8') + b'\0')
        with open(path, 'rb') as f:
            digest.update(f.read())
    return digest.hexdigest()[:20]


def _build(module_name, sources, headers, build_kwargs):
    build_dir = os.path.join(_build_root(module_name), _digest(sources + headers))
    loud = verbosity != 'none'
    if loud:
        print(f'Setting up custom op "{module_name}"... ', end='', flush=True)
    try:
        with _exclusive_lock(build_dir + '.lock'):
            # Sources are copied beside the build, so the folder stays valid if the originals change.
            # The digest names the contents, so an existing copy is never refreshed (ninja would
            # see a newer file and rebuild).
            os.makedirs(build_dir, exist_ok=True)
            for path in sources + headers:
                copy = os.path.join(build_dir, os.path.basename(path))
                if not os.path.isfile(copy):
                    shutil.copyfile(path, copy + '.tmp')
                    os.replace(copy + '.tmp', copy)
            build_sources = [os.path.join(build_dir, os.path.basename(path)) for path in sources]
            module = load_locked(name=module_name, sources=build_sources, build_directory=build_dir,
                                 verbose=verbosity == 'full', lock_held=True, **build_kwargs)
    except Exception as error:  # pylint: disable=broad-except
        if loud:
            print('failed.')
        _problems[module_name] = (f'failed to build ({_first_line(error)}; set torch_utils.custom_ops.verbosity = '
                                  f'"full" for the compiler output)')
        return None
    if loud:
        print('done.')
    return module


def load_locked(build_directory, lock_held=False, **load_kwargs):
    """torch.utils.cpp_extension.load into `build_directory`, safe against builds that were killed.

    torch guards a build with a 'lock' file that a killed build leaves behind, after which every later load of
    that folder waits for ever. Under our own OS lock (released by the kernel whatever happens to its holder)
    nobody else is building there, so torch's lock file, if any, is stale and is removed first.
    """
    from torch.utils import cpp_extension  # pylint: disable=import-outside-toplevel  # Slow (setuptools): builds only.
    with contextlib.nullcontext() if lock_held else _exclusive_lock(build_directory + '.lock'):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(build_directory, 'lock'))
        return cpp_extension.load(build_directory=build_directory, **load_kwargs)


@contextlib.contextmanager
def _exclusive_lock(lock_path):
    """Hold an OS file lock on `lock_path`; released by the OS even if this process dies."""
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    if fcntl is None:
        yield
        return
    with open(lock_path, 'a') as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)

#----------------------------------------------------------------------------
