"""bench/acceptance_report.py: the GPU acceptance run's section states each target next to what was measured."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from tests import limits

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location('acceptance_report', os.path.join(REPO_ROOT, 'bench', 'acceptance_report.py'))
acceptance_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(acceptance_report)

# In bench/ops.py's format: op (24 wide), shape, impl, fwd ms, fwd GB/s, f+b ms, f+b GB/s.
OPS = '''device=NVIDIA H200 torch=2.13.0 batch=32 dtype=torch.float32 threads=16
op                       shape          impl      fwd ms  fwd GB/s    f+b ms  f+b GB/s
bias_act lrelu           512x32^2       cuda       0.100    1000.0     0.300    1200.0
bias_act lrelu           512x32^2       ref        0.200     500.0     0.500     700.0
bias_act lrelu           128x128^2      cuda       0.200    3000.0     0.400    2600.0
bias_act lrelu           128x128^2      ref        0.900     700.0     1.600     650.0
upsample2d x2            64x256^2       cuda       0.500    2000.0     1.000    1500.0
upsample2d x2            64x256^2       ref        1.000    1000.0     2.000     750.0
'''


def _train_line(cfg, arch, sec_per_kimg):
    return json.dumps(dict(cfg=cfg, res=256, g_arch=arch, reg_type='none', batch=64, sec_per_kimg=sec_per_kimg,
                           peak_mem_gib=10.0))


def test_ops_targets_apply_from_128_and_need_3x_and_half_the_bandwidth():
    lines = acceptance_report.ops_table(acceptance_report.parse_ops(OPS), copy_gbps=4000.0)
    by_shape = {line.split(' | ')[1]: line for line in lines[2:]}
    assert 'not a target' in by_shape['512x32^2']
    assert '4.0x' in by_shape['128x128^2'] and '65%' in by_shape['128x128^2'] and by_shape['128x128^2'].endswith('| met |')
    assert '2.0x' in by_shape['64x256^2'] and '**missed**' in by_shape['64x256^2']


def test_paper256_skip_is_held_to_the_v100_number_and_its_bandwidth_scaling():
    lines = acceptance_report.train_table([_train_line('paper256', 'skip', 3.0), _train_line('paper256', 'squeeze', 2.5)],
                                          copy_gbps=4500.0)
    assert 'met (V100: 21.6); bandwidth-scaled 4.3: met' in lines[2]
    assert lines[3].endswith('|  |')  # Only the skip row has a target.


def test_report_is_one_dated_section():
    text = acceptance_report.report('NVIDIA H200', '2026-12-02', 'bash bench/gpu_acceptance.sh', '68 passed in 50s',
                                    4500.0, OPS, [_train_line('paper256', 'skip', 30.0)])
    assert text.startswith('## GPU acceptance, 2026-12-02\n') and 'GPU tests (SQUEEZEGAN_OPS=cuda): `68 passed in 50s`' in text
    assert '**missed** (V100: 21.6)' in text


def test_op_paths_must_all_be_the_kernels():
    kernels = 'Ops on cuda:0 (SQUEEZEGAN_OPS=cuda): bias_act: CUDA kernel; upfirdn2d: CUDA kernel\n'
    fallback = ('Ops on cuda:0 (SQUEEZEGAN_OPS=auto): bias_act: CUDA kernel; upfirdn2d: reference (the kernel failed '
                'to build (x; y))\n')
    assert acceptance_report.op_paths_lines(kernels + OPS)[-1].endswith(': met')
    assert '**missed**' in acceptance_report.op_paths_lines(fallback + OPS)[-1]
    assert '**not reported**' in acceptance_report.op_paths_lines(OPS)[0]
    assert acceptance_report.parse_ops(kernels + OPS) == acceptance_report.parse_ops(OPS)


def _syncs(**changes):
    row = dict(device='NVIDIA H200', steps=8, host_reads=28, allowed_pipe_reads=28, geometric_resamples=28,
               other_reads={}, cuda_syncs=28, cuda_sync_sites={'training/augment/pipe.py:221': 28})
    return json.dumps({**row, **changes})


def test_host_syncs_target_allows_only_the_padding_reads():
    assert acceptance_report.sync_lines(_syncs())[-1].endswith(': met')
    missed = acceptance_report.sync_lines(_syncs(host_reads=29, other_reads={'training/loss.py:300 __bool__': 1}))
    assert missed[-1].endswith('**missed**') and '`training/loss.py:300 __bool__` x1' in missed[1]
    assert acceptance_report.sync_lines(_syncs(cuda_syncs=40))[-1].endswith('**missed**')
    assert '**not measured**' in acceptance_report.sync_lines(None)[0]


def test_acceptance_script_without_a_gpu_exits_non_zero_with_one_line(tmp_path):
    import torch  # pylint: disable=import-outside-toplevel
    if torch.cuda.is_available():
        return  # On a GPU machine this would start the real run.
    result = subprocess.run(['bash', os.path.join(REPO_ROOT, 'bench', 'gpu_acceptance.sh')], capture_output=True, text=True,
                            env=dict(os.environ, PYTHON=sys.executable, OUT=str(tmp_path)), timeout=limits.seconds(120), check=False)
    assert result.returncode == 1
    problems = [line for line in result.stderr.splitlines() if not line.startswith('[acceptance]')]
    assert problems == [f'gpu_acceptance: {sys.executable} finds no CUDA device here (no torch, or '
                        f'torch.cuda.is_available() is False); run it on the GPU machine']


def test_measured_differences_travel_from_the_tests_through_junit_xml_to_the_report(tmp_path):
    """The `measured` fixture (tests/conftest.py) under pytest.ini's settings, pytest's --junitxml, the parser."""
    (tmp_path / 'test_recording.py').write_text(textwrap.dedent('''
        import pytest

        @pytest.mark.parametrize('scale', [1, 3, 2])
        def test_kernel(measured, scale):
            measured('fp16 output', 0.125 * scale, 1.0)
            measured('CPU scale', 0.5 / scale)
    '''))
    xml = tmp_path / 'out.xml'
    result = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-c', os.path.join(REPO_ROOT, 'pytest.ini'),
                             '--rootdir', str(tmp_path), '-p', 'tests.conftest', '-p', 'no:cacheprovider',
                             f'--junitxml={xml}', str(tmp_path / 'test_recording.py')],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=limits.seconds(120), check=False)
    assert result.returncode == 0 and 'warning' not in result.stdout.lower(), result.stdout + result.stderr
    rows = acceptance_report.parse_measured(xml.read_text())
    assert rows == {('test_recording::test_kernel', 'fp16 output'): (0.375, 1.0, '3'),
                    ('test_recording::test_kernel', 'CPU scale'): (0.5, None, '1')}
    lines = acceptance_report.measured_lines(rows)
    assert '| test_recording::test_kernel | fp16 output | 0.375 | 1 | 37.5% | 3 |' in lines
    assert '| test_recording::test_kernel | CPU scale | 0.5 | - | - | 1 |' in lines
    text = acceptance_report.report('NVIDIA H200', '2026-12-02', 'bash bench/gpu_acceptance.sh', '68 passed in 50s',
                                    4500.0, OPS, [], measured=rows)
    assert '### Measured differences in the GPU tests (TF32 off)\n\n| test | quantity |' in text
    assert '**not recorded**' in '\n'.join(acceptance_report.measured_lines(None))
