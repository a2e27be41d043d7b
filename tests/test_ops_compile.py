"""The CI check that compiles the CUDA kernels and their PyTorch bindings with nvcc (no GPU needed); skipped where nvcc is absent."""

import os
import shutil
import subprocess
import sys

import pytest
from tests import limits

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, '.ci', 'compile_cuda.sh')
needs_nvcc = pytest.mark.skipif(shutil.which('nvcc') is None, reason='nvcc is not installed')


def _run_script(script=SCRIPT, timeout=limits.seconds(300), **env):
    env = {**os.environ, 'PYTHON': sys.executable, **env}  # The bindings compile against this interpreter's torch.
    return subprocess.run(['bash', script], capture_output=True, text=True, timeout=timeout, check=False, env=env)


def _copy_script_with_ops(tmp_path, files):
    """A tree holding only the check script and the given torch_utils/ops files; returns the script's path."""
    os.makedirs(tmp_path / '.ci')
    os.makedirs(tmp_path / 'torch_utils' / 'ops')
    shutil.copy(SCRIPT, tmp_path / '.ci' / 'compile_cuda.sh')
    for name, text in files.items():
        (tmp_path / 'torch_utils' / 'ops' / name).write_text(text)
    return str(tmp_path / '.ci' / 'compile_cuda.sh')


@pytest.mark.slow
@needs_nvcc
def test_cuda_kernels_and_bindings_compile_with_nvcc():
    # About 30 s on 2 cores, nearly all of it the bindings parsing torch's headers.
    result = _run_script()
    assert result.returncode == 0, result.stdout + result.stderr
    for source in ('bias_act.cu', 'upfirdn2d.cu', 'bias_act.cpp', 'upfirdn2d.cpp'):
        assert f'ok      torch_utils/ops/{source}' in result.stdout, result.stdout
    # PyTorch's own flags, as its first-use build on a GPU (no half operators, its C++ standard), nothing else.
    from torch_utils import custom_ops  # pylint: disable=import-outside-toplevel
    assert f'compile_cuda: kernel flags: {" ".join(custom_ops.extension_flags()["nvcc"])}\n' in result.stdout
    assert 'fast_math' not in open(SCRIPT, encoding='utf-8').read()


def test_first_use_builds_add_no_flags_of_their_own(monkeypatch):
    from torch_utils import custom_ops  # pylint: disable=import-outside-toplevel
    from torch_utils.ops import bias_act, upfirdn2d  # pylint: disable=import-outside-toplevel
    asked = {}
    monkeypatch.setattr(custom_ops, 'get_plugin', lambda module_name, **kwargs: asked.update({module_name: kwargs}))
    bias_act._plugin()  # pylint: disable=protected-access
    upfirdn2d._plugin()  # pylint: disable=protected-access
    for kwargs in asked.values():  # Sources and headers only: cpp_extension's flags are the whole build.
        assert set(kwargs) == {'sources', 'headers', 'source_dir'}


@needs_nvcc
def test_syntax_error_in_a_kernel_fails_the_check(tmp_path):
    result = _run_script(_copy_script_with_ops(tmp_path, {'broken.cu': '__global__ void k() { int x = ; }\n'}))
    assert result.returncode != 0
    assert 'FAILED  torch_utils/ops/broken.cu' in result.stdout


@needs_nvcc
def test_syntax_error_in_a_binding_fails_the_check(tmp_path):
    result = _run_script(_copy_script_with_ops(tmp_path, {'broken.cpp': 'static int f() { int x = ; }\n'}))
    assert result.returncode != 0
    assert 'FAILED  torch_utils/ops/broken.cpp' in result.stdout


@needs_nvcc
def test_bindings_without_torch_are_a_clear_skip(tmp_path):
    script = _copy_script_with_ops(tmp_path, {'ok.cu': '__global__ void k() {}\n', 'never.cpp': 'int x = ;\n'})
    result = _run_script(script, PYTHON='no-such-python')
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'SKIPPED the .cpp bindings: no Python interpreter "no-such-python"' in result.stdout
    assert 'ok      torch_utils/ops/ok.cu' in result.stdout


def test_missing_nvcc_is_a_clear_skip_not_a_failure():
    result = _run_script(timeout=limits.seconds(60), NVCC='no-such-nvcc')
    assert result.returncode == 0
    assert 'SKIPPED, nvcc not found' in result.stdout
