"""Builds C++/CUDA extensions with ninja on first use, or reports once that they cannot be built."""

import glob
import hashlib
import importlib
import os
import shutil
import warnings

import torch

#----------------------------------------------------------------------------

verbosity = 'brief'   # 'none': silent, 'brief': one line per build, 'full': the compiler's output.

_cached_plugins = dict()   # module name -> built module, or None when it could not be built

#----------------------------------------------------------------------------

def _find_compiler_problem():
    """Why extensions cannot be built here, or None when they probably can."""
    if not torch.cuda.is_available():
        return 'CUDA is not available'
    if shutil.which('ninja') is None:
        try:
            importlib.import_module('ninja')
        except ImportError:
            return 'ninja is not installed (pip install ninja)'
    from torch.utils import cpp_extension  # pylint: disable=import-outside-toplevel
    if cpp_extension.CUDA_HOME is None:
        return 'nvcc was not found (set CUDA_HOME)'
    if shutil.which('c++') is None and shutil.which('g++') is None and shutil.which('cl') is None:
        return 'no C++ compiler was found'
    return None


def _source_digest(paths):
    digest = hashlib.md5()
    for path in sorted(paths, key=os.path.basename):
        digest.update(os.path.basename(path).encode('utf-8'))
        with open(path, 'rb') as f:
            digest.update(f.read())
    return digest.hexdigest()


def _build_dir_for(module_name, paths):
    """A build folder per (module, source contents), so edited sources rebuild and old builds stay valid."""
    from torch.utils import cpp_extension  # pylint: disable=import-outside-toplevel
    root = cpp_extension._get_build_directory(module_name, verbose=verbosity == 'full')  # pylint: disable=protected-access
    build_dir = os.path.join(root, _source_digest(paths))
    if not os.path.isdir(build_dir):
        # Copy the sources into a private folder and rename it into place, so that processes building
        # at the same time never see a half-copied folder; the loser of the race discards its copy.
        tmp_dir = f'{build_dir}.tmp{os.getpid()}'
        os.makedirs(tmp_dir, exist_ok=True)
        for path in paths:
            shutil.copyfile(path, os.path.join(tmp_dir, os.path.basename(path)))
        try:
            os.replace(tmp_dir, build_dir)
        except OSError:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    return build_dir


def get_plugin(module_name, sources, headers=None, source_dir=None, **build_kwargs):
    """Build (or load the cached build of) a C++/CUDA extension; None, after one warning, when impossible.

    Builds live under $TORCH_EXTENSIONS_DIR (PyTorch's default otherwise); torch serialises concurrent
    builds of the same folder with a lock file.
    """
    if module_name in _cached_plugins:
        return _cached_plugins[module_name]
    headers = list(headers or [])
    if source_dir is not None:
        sources = [os.path.join(source_dir, name) for name in sources]
        headers = [os.path.join(source_dir, name) for name in headers]

    problem = _find_compiler_problem()
    if problem is not None:
        _cached_plugins[module_name] = None
        if torch.cuda.is_available():
            warnings.warn(f'custom op "{module_name}" cannot be built ({problem}); using the slower reference implementation')
        return None

    try:
        from torch.utils import cpp_extension  # pylint: disable=import-outside-toplevel
        build_dir = _build_dir_for(module_name, sources + headers)
        build_sources = [os.path.join(build_dir, os.path.basename(path)) for path in sources]
        if verbosity in ('brief', 'full'):
            print(f'Setting up custom op "{module_name}"... ', end='', flush=True)
        module = cpp_extension.load(name=module_name, sources=build_sources, build_directory=build_dir,
                                    verbose=verbosity == 'full', **build_kwargs)
        if verbosity in ('brief', 'full'):
            print('done.')
    except Exception as err:  # pylint: disable=broad-except
        if verbosity in ('brief', 'full'):
            print('failed.')
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        warnings.warn(f'custom op "{module_name}" failed to build ({first_line}); using the slower reference '
                      f'implementation (set torch_utils.custom_ops.verbosity = "full" to see the compiler output)')
        module = None
    _cached_plugins[module_name] = module
    return module


def clean_builds(module_name):
    """Remove every cached build folder of `module_name` (e.g. after a CUDA upgrade)."""
    from torch.utils import cpp_extension  # pylint: disable=import-outside-toplevel
    root = cpp_extension._get_build_directory(module_name, verbose=False)  # pylint: disable=protected-access
    for path in glob.glob(os.path.join(root, '*')):
        shutil.rmtree(path, ignore_errors=True)
    _cached_plugins.pop(module_name, None)

#----------------------------------------------------------------------------
