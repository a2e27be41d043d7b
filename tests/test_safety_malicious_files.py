"""Malicious network pickles: every entry point refuses them with one line, and nothing in them runs."""

import collections
import io
import os
import pickle
import sys

import pytest
import torch

from tests import legacy_helpers
from tests import safety_helpers as evil
from tests.train_helpers import TINY_ARGS, write_image_folder
from torch_utils import persistence
from training import export, legacy


@pytest.fixture(scope='module')
def data16(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp('data') / 'tiny16', num_images=4, resolution=16)


# How a user runs each tool on a network file (`pkl`), with outputs under `out`.
ENTRY_POINTS = {
    'generate':     lambda pkl, out, data: ['generate.py', f'--network={pkl}', '--seeds=0', f'--outdir={out}',
                                            '--device=cpu'],
    'calc_metrics': lambda pkl, out, data: ['calc_metrics.py', f'--network={pkl}', '--metrics=fid50k_full',
                                            f'--data={data}', '--device=cpu'],
    'train':        lambda pkl, out, data: ['train.py', f'--outdir={out}', f'--data={data}', *TINY_ARGS,
                                            f'--resume={pkl}'],
    'export':       lambda pkl, out, data: ['-m', 'training.export', f'--network={pkl}', f'--dest={out}.pt'],
    'legacy':       lambda pkl, out, data: ['-m', 'training.legacy', f'--source={pkl}', f'--dest={out}.pkl'],
}
PAYLOADS = {  # Name of the payload maker -> the global that must be named in the refusal.
    'system_payload': 'posix.system' if os.name == 'posix' else 'nt.system',
    'open_payload':   'io.open',
}


@pytest.mark.slow
@pytest.mark.parametrize('payload', sorted(PAYLOADS))
@pytest.mark.parametrize('entry_point', sorted(ENTRY_POINTS))
def test_entry_point_refuses_a_malicious_pickle_with_one_line(tmp_path, data16, entry_point, payload):
    marker = tmp_path / 'payload-ran'
    pkl = evil.network_pickle(tmp_path / 'evil.pkl', getattr(evil, payload)(marker))
    out = tmp_path / 'out'
    result = evil.run_entry_point(ENTRY_POINTS[entry_point](pkl, out, data16), cwd=evil.REPO_ROOT)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, result.stderr[-2000:]
    assert 'Traceback' not in result.stderr, result.stderr[-2000:]
    assert lines and lines[-1].startswith('Error:') and f'refusing to load {PAYLOADS[payload]}' in lines[-1], lines[-1:]
    assert 'evil.pkl' in lines[-1]
    assert not marker.exists()
    assert not any(os.path.exists(f'{out}{suffix}') for suffix in ('.pt', '.pkl'))


def test_export_cli_refuses_a_storage_that_hides_a_torch_save_payload(tmp_path):
    marker = tmp_path / 'payload-ran'
    pkl = evil.network_pickle(tmp_path / 'evil.pkl', evil.storage_payload(marker))
    result = evil.run_entry_point(ENTRY_POINTS['export'](pkl, tmp_path / 'out', None), cwd=evil.REPO_ROOT)
    last_line = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert 'refusing to load a tensor storage' in last_line and 'io.open' in last_line
    assert not marker.exists()

#----------------------------------------------------------------------------
# The loader every entry point ends in.


@pytest.mark.parametrize('payload, refused', [
    ('system_payload', PAYLOADS['system_payload']),
    ('open_payload', 'io.open'),
    ('storage_payload', 'a tensor storage'),
    ('popen_payload', 'subprocess.Popen'),
])
def test_load_network_pkl_refuses_the_payload_and_names_the_file(tmp_path, payload, refused):
    marker = tmp_path / 'payload-ran'
    pkl = evil.network_pickle(tmp_path / 'evil.pkl', getattr(evil, payload)(marker))
    with pytest.raises(persistence.UnsafePickleError) as info:
        legacy.load_network_pkl(pkl)
    message = str(info.value)
    assert message.startswith(f'{pkl}: refusing to load {refused}') and '\n' not in message
    assert not marker.exists()


def test_payload_after_real_networks_is_still_refused(tmp_path):
    marker = tmp_path / 'payload-ran'
    networks = legacy_helpers.make_networks(seed=0)
    data = pickle.dumps(dict(networks, D=evil.system_payload(marker)))
    with pytest.raises(persistence.UnsafePickleError, match='refusing to load'):
        legacy.load_network_pkl(io.BytesIO(data))
    assert not marker.exists()


def test_export_load_network_turns_a_refusal_into_a_one_line_network_file_error(tmp_path):
    pkl = evil.network_pickle(tmp_path / 'evil.pkl', evil.open_payload(tmp_path / 'payload-ran'))
    with pytest.raises(export.NetworkFileError) as info:
        export.load_network(pkl)
    assert str(info.value).startswith(f'{pkl}: refusing to load io.open') and '\n' not in str(info.value)


def test_embedded_source_of_a_class_that_is_not_official_is_not_executed(tmp_path):
    marker = tmp_path / 'source-ran'
    pkl = evil.network_pickle(tmp_path / 'evil.pkl', evil.embedded_source_payload(marker))
    with pytest.raises(export.NetworkFileError, match="class 'Widget'.*allow_code_execution=True"):
        export.load_network(pkl)
    assert not marker.exists()


@pytest.fixture(scope='module')
def generator():
    return legacy_helpers.make_networks(seed=0)['G_ema']


@pytest.mark.parametrize('module_name, class_name, refusal', [
    ('subprocess', 'Popen', 'refusing to load subprocess.Popen: not a persistent class'),
    ('dnnlib.util', 'EasyDict', 'refusing to load dnnlib.util.EasyDict: not a persistent class'),
    ('antigravity', 'fly', "may not import 'antigravity', which is outside this package"),
    ('os', 'system', "'system' from module 'os'"),
    ('builtins', 'eval', "'eval' from module 'builtins'"),
    ('torch_utils.persistence', '_execute_source', "'_execute_source' from module 'torch_utils.persistence'"),
])
def test_persistent_meta_naming_a_foreign_module_or_class_is_refused(tmp_path, generator, module_name, class_name,
                                                                   refusal):
    # Beside a real generator, under a key the loader does not check: only the class rules stop it.
    payload = evil.persistent_payload(module_name, class_name, state=dict(args=['true']))
    pkl = tmp_path / 'evil.pkl'
    pkl.write_bytes(pickle.dumps(dict(G_ema=generator, extra=payload)))
    with pytest.raises(export.NetworkFileError) as info:
        export.load_network(str(pkl))
    assert refusal in str(info.value) and '\n' not in str(info.value)
    assert 'antigravity' not in sys.modules


def test_own_snapshot_and_official_pickle_still_load_through_the_common_loader(tmp_path):
    snapshot = legacy_helpers.make_networks(seed=2)
    expected = legacy_helpers.generator_output(snapshot['G_ema'])
    (tmp_path / 'ours.pkl').write_bytes(pickle.dumps(snapshot))
    (tmp_path / 'official.pkl').write_bytes(legacy_helpers.official_pickle_bytes(snapshot))
    for name in ('ours.pkl', 'official.pkl'):
        loaded = export.load_network(str(tmp_path / name))
        assert (legacy_helpers.generator_output(loaded['G_ema']) - expected).abs().max() <= 1e-4, name

#----------------------------------------------------------------------------
# The explicit opt-in for trusted files.


def test_allow_code_execution_loads_a_trusted_pickle_the_restricted_loader_refuses():
    data = pickle.dumps(dict(G=torch.nn.Linear(2, 2), extra=evil.Call(collections.Counter, 'aab')))
    with pytest.raises(persistence.UnsafePickleError, match='refusing to load collections.Counter'):
        legacy.load_network_pkl(io.BytesIO(data))
    loaded = legacy.load_network_pkl(io.BytesIO(data), allow_code_execution=True)
    assert isinstance(loaded['G'], torch.nn.Linear) and loaded['extra'] == collections.Counter('aab')
