"""The CI check that compiles the CUDA kernels with nvcc (no GPU needed); skipped where nvcc is absent."""

import os
import shutil
import subprocess

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, '.ci', 'compile_cuda.sh')
needs_nvcc = pytest.mark.skipif(shutil.which('nvcc') is None, reason='nvcc is not installed')


@pytest.mark.slow
@needs_nvcc
def test_cuda_kernels_compile_with_nvcc():
    result = subprocess.run(['bash', SCRIPT], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'ok      torch_utils/ops/bias_act.cu' in result.stdout
    assert 'ok      torch_utils/ops/upfirdn2d.cu' in result.stdout


@needs_nvcc
def test_syntax_error_in_a_kernel_fails_the_check(tmp_path):
    os.makedirs(tmp_path / '.ci')
    os.makedirs(tmp_path / 'torch_utils' / 'ops')
    shutil.copy(SCRIPT, tmp_path / '.ci' / 'compile_cuda.sh')
    (tmp_path / 'torch_utils' / 'ops' / 'broken.cu').write_text('__global__ void k() { int x = ; }\n')
    result = subprocess.run(['bash', str(tmp_path / '.ci' / 'compile_cuda.sh')], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode != 0
    assert 'FAILED  torch_utils/ops/broken.cu' in result.stdout


def test_missing_nvcc_is_a_clear_skip_not_a_failure():
    result = subprocess.run(['bash', SCRIPT], capture_output=True, text=True, timeout=60, check=False,
                            env=dict(os.environ, NVCC='no-such-nvcc'))
    assert result.returncode == 0
    assert 'SKIPPED, nvcc not found' in result.stdout
