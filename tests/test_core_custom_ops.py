"""custom_ops: cached ninja builds shared by processes, and one clear warning when a plugin cannot be built."""

import os
import uuid
import warnings

import pytest
import torch

from tests import core_helpers
from torch_utils import custom_ops

# A plain CPython extension: compiles in about a second (no torch headers), yet goes through the
# same cpp_extension.load + ninja path as the real ops.
TINY_EXTENSION = '''
#include <Python.h>
static PyObject* answer(PyObject*, PyObject*) { return PyLong_FromLong(ANSWER); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, "The answer."}, {nullptr, nullptr, 0, nullptr}};
static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "NAME", nullptr, -1, methods};
PyMODINIT_FUNC PyInit_NAME(void) { return PyModule_Create(&module_def); }
'''


def _write_source(folder, module_name, answer=42, broken=False):
    path = os.path.join(folder, f'{module_name}.cpp')
    text = TINY_EXTENSION.replace('NAME', module_name).replace('ANSWER', str(answer))
    with open(path, 'w') as f:
        f.write(text + ('this is not C++;\n' if broken else ''))
    return path


@pytest.fixture
def extensions_dir(tmp_path, monkeypatch):
    folder = tmp_path / 'torch_extensions'
    monkeypatch.setenv('TORCH_EXTENSIONS_DIR', str(folder))
    monkeypatch.setattr(custom_ops, 'verbosity', 'none')
    return folder


def _unique(prefix):
    return f'{prefix}_{uuid.uuid4().hex[:8]}'


def test_cuda_plugin_without_cuda_returns_none_after_one_warning(tmp_path, extensions_dir):
    if torch.cuda.is_available():
        pytest.skip('this machine can build CUDA plugins')
    name = _unique('core_cuda_only')
    (tmp_path / 'kernel.cu').write_text('// never compiled\n')
    with pytest.warns(custom_ops.PluginUnavailableWarning, match=f'"{name}" cannot be built here .*reference'):
        assert custom_ops.get_plugin(name, sources=['kernel.cu'], source_dir=str(tmp_path)) is None
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert custom_ops.get_plugin(name, sources=['kernel.cu'], source_dir=str(tmp_path)) is None


def test_missing_source_file_is_named_in_the_warning(tmp_path, extensions_dir):
    name = _unique('core_missing')
    with pytest.warns(custom_ops.PluginUnavailableWarning, match='gone.cpp does not exist'):
        assert custom_ops.get_plugin(name, sources=['gone.cpp'], source_dir=str(tmp_path)) is None


def test_unknown_verbosity_is_rejected(monkeypatch):
    monkeypatch.setattr(custom_ops, 'verbosity', 'loud')
    with pytest.raises(ValueError, match="none, brief, full; got 'loud'"):
        custom_ops.get_plugin(_unique('core_verbosity'), sources=['x.cpp'])


def test_compile_error_returns_none_after_one_warning(tmp_path, extensions_dir):
    name = _unique('core_broken')
    source = _write_source(str(tmp_path), name, broken=True)
    with pytest.warns(custom_ops.PluginUnavailableWarning, match=f'"{name}" failed to build'):
        assert custom_ops.get_plugin(name, sources=[source]) is None
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert custom_ops.get_plugin(name, sources=[source]) is None


@pytest.mark.slow
def test_concurrent_processes_share_one_cached_build(tmp_path, extensions_dir):
    name = _unique('core_tiny')
    source = _write_source(str(tmp_path), name, answer=42)
    script = f'''
        import json
        from torch_utils import custom_ops
        custom_ops.verbosity = 'none'
        module = custom_ops.get_plugin({name!r}, sources=[{source!r}])
        print(json.dumps(dict(answer=module.answer(), file=module.__file__)))
    '''
    # Two processes that both find no build start at once; the lock makes one build and one reuse it.
    env = dict(os.environ, TORCH_EXTENSIONS_DIR=str(extensions_dir))
    procs = [core_helpers.start_python(script, cwd=str(tmp_path), env=env) for _ in range(2)]
    results = [core_helpers.finish_python(proc) for proc in procs]
    assert [r['answer'] for r in results] == [42, 42]
    assert results[0]['file'] == results[1]['file']
    assert results[0]['file'].startswith(str(extensions_dir))
    built_at = os.path.getmtime(results[0]['file'])

    # In this process: the cached build loads without compiling again.
    module = custom_ops.get_plugin(name, sources=[source])
    assert module.answer() == 42
    assert os.path.getmtime(module.__file__) == built_at
    assert custom_ops.get_plugin(name, sources=[source]) is module

