"""Shared pytest configuration: repo root on sys.path, small thread counts, the `gpu` marker, an empty dnnlib cache
per test, and a check for room on the temporary disk before anything runs."""

import json
import os
import shutil
import sys
import tempfile

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


def pytest_configure(config):
    config.addinivalue_line('markers', 'gpu: needs a CUDA device; skipped without one')
    config.addinivalue_line('markers', 'slow: takes more than a few seconds on 2 CPU cores')


# Room the suite needs where pytest writes its temporary folders: a run on 2 cores peaked at 0.23 GB (2026-12-03,
# with the failed-only retention of pytest.ini); the rest is margin for the folders that failing tests keep.
SUITE_TEMP_NEED = 1 << 30


def temp_room_error(folder, need=None):
    """One line when the disk holding `folder` (or its nearest existing parent) has under `need` bytes free
    (default SUITE_TEMP_NEED)."""
    need = SUITE_TEMP_NEED if need is None else need
    probe = os.path.abspath(folder)
    while not os.path.isdir(probe):
        probe = os.path.dirname(probe)
    free = shutil.disk_usage(probe).free
    if free >= need:
        return None
    return (f'the tests need about {need / 2**30:.1f} GB free for temporary files in {probe}, which has '
            f'{free / 2**20:.0f} MB: free some space, or point TMPDIR or --basetemp elsewhere')


def pytest_sessionstart(session):
    error = temp_room_error(session.config.option.basetemp or tempfile.gettempdir())
    if error:  # One line instead of hundreds of failures once the disk fills mid-run.
        pytest.exit(error, returncode=1)


def pytest_collection_modifyitems(config, items):
    import torch
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason='needs a CUDA device')
    for item in items:
        if 'gpu' in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _gpu_tests_demand_the_kernels(request, monkeypatch):
    # A GPU test whose kernel failed to build or to pass its self-check must fail, not quietly compare the
    # reference with itself: SQUEEZEGAN_OPS=cuda turns every such fallback into KernelUnavailableError.
    if 'gpu' in request.keywords:
        monkeypatch.setenv('SQUEEZEGAN_OPS', 'cuda')


@pytest.fixture(autouse=True)
def _gpu_tests_compare_float32(request):
    # cuDNN convolves in TF32 by default on Ampere and newer GPUs (10-bit mantissa, ~1e-3 relative): the GPU tests
    # compare float32 results, as training and calc_metrics.py compute them with TF32 off, not TF32 noise. And
    # cuDNN's own algorithm choice, not the timed one an in-process calc_metrics.py run switched on.
    if 'gpu' not in request.keywords:
        yield
        return
    import torch
    from torch_utils import misc
    previous, previous_benchmark = misc.set_tf32(False), torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    yield
    misc.set_tf32(previous)
    torch.backends.cudnn.benchmark = previous_benchmark


@pytest.fixture(autouse=True)
def _few_threads():
    # CI has 2 cores; tiny test tensors gain nothing from threads and lose badly to contention (a tiny
    # conv took 31 ms with 2 threads and 0.3 ms with 1 on a shared machine).
    import torch
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def measured(record_property):
    """measured(quantity, value, bound=None) -> value, recorded beside its bound as a property of the test, so that
    `pytest --junitxml` carries what a GPU run measured to bench/acceptance_report.py (and tolerances can be set
    from it)."""
    def record(quantity, value, bound=None):
        record_property(quantity, json.dumps(dict(value=float(value), bound=None if bound is None else float(bound))))
        return float(value)
    return record


@pytest.fixture(autouse=True)
def _own_dnnlib_cache(tmp_path_factory, monkeypatch):
    """Every test starts with an empty dnnlib cache of its own: none writes into the user's ~/.cache/dnnlib (a
    training test with metrics left a statistics file there on every run), and none sees what another left."""
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path_factory.mktemp('dnnlib-cache')))


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty dnnlib download cache, and no detector folder from the environment."""
    from metrics import detectors
    folder = tmp_path / 'dnnlib-cache'
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(folder))
    monkeypatch.delenv(detectors.DETECTOR_DIR_ENV, raising=False)
    return folder


@pytest.fixture
def no_downloads(monkeypatch):
    """dnnlib.util.open_url fails at once, as on a machine without internet."""
    import dnnlib

    def refuse(url, *args, **kwargs):
        raise OSError(f'cannot download {url} (no network)')
    monkeypatch.setattr(dnnlib.util, 'open_url', refuse)
