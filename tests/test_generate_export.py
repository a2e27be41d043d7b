"""The weights-only network format and training.export.load_network, the loader every CLI shares."""

import pickletools
import zipfile

import pytest
import torch

import dnnlib
import generate
from tests import generate_helpers as helpers
from training import export
from training.run import resume


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """(networks, snapshot pickle, weights-only file made from it by the CLI)."""
    folder = tmp_path_factory.mktemp('export')
    networks = helpers.make_networks(c_dim=3)
    pkl = helpers.write_snapshot(folder / 'network-snapshot-000040.pkl', networks)
    dest = folder / 'model.pt'
    result = helpers.run_cli(export.main, [f'--network={pkl}', f'--dest={dest}'])
    assert result.exit_code == 0, result.output
    return networks, pkl, str(dest)


def pickle_globals(path):
    """Every module.name that the pickles inside a torch zip file refer to."""
    names = set()
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if not member.endswith('.pkl'):
                continue
            recent_strings = []
            for op, arg, _pos in pickletools.genops(archive.read(member)):
                if op.name in ('SHORT_BINUNICODE', 'BINUNICODE', 'UNICODE'):
                    recent_strings = (recent_strings + [arg])[-2:]
                elif op.name == 'GLOBAL':
                    names.add(arg.replace(' ', '.'))
                elif op.name == 'STACK_GLOBAL':  # Module and name are the two strings pushed just before.
                    names.add('.'.join(recent_strings))
    return names


def is_tensor_plumbing(name):
    return (name == 'collections.OrderedDict' or name.startswith('torch._utils._rebuild_tensor')
            or (name.startswith('torch.') and name.endswith('Storage')))


def test_weights_only_file_loads_with_torch_weights_only(exported):
    _networks, _pkl, dest = exported
    content = torch.load(dest, weights_only=True)
    assert content['format'] == export.FORMAT_NAME
    assert set(content['networks']) == {'G', 'D', 'G_ema'}


def test_weights_only_file_refers_to_no_code_of_ours(exported):
    _networks, _pkl, dest = exported
    names = pickle_globals(dest)
    assert 'torch._utils._rebuild_tensor_v2' in names
    assert all(is_tensor_plumbing(name) for name in names), names


def test_weights_only_metadata_describes_the_generator(exported):
    networks, _pkl, dest = exported
    metadata = torch.load(dest, weights_only=True)['metadata']
    G = networks['G_ema']
    assert metadata['resolution'] == G.img_resolution
    assert (metadata['c_dim'], metadata['z_dim'], metadata['w_dim']) == (3, G.z_dim, G.w_dim)
    assert metadata['architecture'] == 'skip'
    assert metadata['source'].endswith('network-snapshot-000040.pkl')


def test_round_trip_restores_every_tensor(exported):
    networks, _pkl, dest = exported
    loaded = export.load_network(dest)
    for key in ['G', 'D', 'G_ema']:
        original, restored = networks[key].state_dict(), loaded[key].state_dict()
        assert list(original) == list(restored)
        assert all(torch.equal(original[name], restored[name]) for name in original), key
    assert loaded['augment_pipe'] is None
    assert loaded['training_set_kwargs'].path == 'data.zip'


def test_round_trip_renders_bit_identical_pngs(exported, tmp_path):
    _networks, pkl, dest = exported
    args = ['--seeds=0-3', '--class=1', '--trunc=0.7', '--device=cpu']
    assert helpers.run_cli(generate.generate_images, [f'--network={pkl}', f'--outdir={tmp_path / "pkl"}', *args]).exit_code == 0
    assert helpers.run_cli(generate.generate_images, [f'--network={dest}', f'--outdir={tmp_path / "pt"}', *args]).exit_code == 0
    from_pickle, from_weights = helpers.png_bytes(tmp_path / 'pkl'), helpers.png_bytes(tmp_path / 'pt')
    assert len(from_pickle) == 4 and from_pickle == from_weights


@pytest.mark.gpu
def test_round_trip_renders_bit_identical_pngs_on_cuda(exported, tmp_path):
    _networks, pkl, dest = exported
    args = ['--seeds=0-3', '--class=2', '--device=cuda', '--batch=2']
    assert helpers.run_cli(generate.generate_images, [f'--network={pkl}', f'--outdir={tmp_path / "pkl"}', *args]).exit_code == 0
    assert helpers.run_cli(generate.generate_images, [f'--network={dest}', f'--outdir={tmp_path / "pt"}', *args]).exit_code == 0
    assert helpers.png_bytes(tmp_path / 'pkl') == helpers.png_bytes(tmp_path / 'pt')


def test_reexporting_a_weights_only_file_keeps_it_loadable(exported, tmp_path):
    networks, _pkl, dest = exported
    export.save_weights_only(export.load_network(dest), tmp_path / 'again.pt')
    again = export.load_network(tmp_path / 'again.pt')
    assert torch.equal(again['G_ema'].mapping.w_avg, networks['G_ema'].mapping.w_avg)


def test_loading_leaves_the_global_rng_alone(exported):
    _networks, _pkl, dest = exported
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    export.load_network(dest)
    assert torch.equal(torch.rand(4), expected)


def test_export_refuses_to_overwrite_an_existing_dest(exported, tmp_path):
    _networks, pkl, _dest = exported
    target = tmp_path / 'model.pt'
    target.write_bytes(b'precious')
    line = helpers.error_line(helpers.run_cli(export.main, [f'--network={pkl}', f'--dest={target}']))
    assert 'model.pt exists' in line and '--overwrite' in line
    assert target.read_bytes() == b'precious'
    assert helpers.run_cli(export.main, [f'--network={pkl}', f'--dest={target}', '--overwrite']).exit_code == 0
    assert zipfile.is_zipfile(target)


def test_export_never_overwrites_its_source(exported):
    _networks, pkl, _dest = exported
    before = open(pkl, 'rb').read()
    line = helpers.error_line(helpers.run_cli(export.main, [f'--network={pkl}', f'--dest={pkl}', '--overwrite']))
    assert 'is the source file' in line
    assert open(pkl, 'rb').read() == before


def test_foreign_torch_file_is_rejected_by_name(tmp_path):
    path = tmp_path / 'weights.pt'
    torch.save({'conv.weight': torch.zeros(2)}, path)
    with pytest.raises(export.NetworkFileError, match=r'weights\.pt: a torch file, but not a squeezegan-weights-only'):
        export.load_network(path)


def test_torch_file_with_pickled_objects_is_refused_not_executed(tmp_path):
    path = tmp_path / 'module.pt'
    torch.save({'format': export.FORMAT_NAME, 'payload': zipfile.ZipInfo('x')}, path)
    with pytest.raises(export.NetworkFileError, match=r'module\.pt: not a readable weights-only network file'):
        export.load_network(path)


def test_unknown_format_version_is_rejected(tmp_path):
    path = tmp_path / 'future.pt'
    torch.save({'format': export.FORMAT_NAME, 'format_version': 99, 'networks': {}}, path)
    with pytest.raises(export.NetworkFileError, match='version 99 is not supported'):
        export.load_network(path)


def test_a_folder_given_as_network_names_its_newest_snapshot(tmp_path):
    # In name order 000000.pkl < 000000_500img.pkl < 000001.pkl: the last is the newest, as the runs name them.
    for name in ('network-snapshot-000001.pkl', 'network-snapshot-000000_500img.pkl', 'network-snapshot-000000.pkl',
                 'network-snapshot-000001.resume.pt', 'fakes000001.png'):
        (tmp_path / name).write_bytes(b'')
    with pytest.raises(export.NetworkFileError) as info:
        export.load_network(tmp_path)
    assert str(info.value) == (f'{tmp_path}: a folder, not a network file; pass one of its snapshots, e.g. the newest: '
                               f'{tmp_path / "network-snapshot-000001.pkl"}')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(export.NetworkFileError, match='empty: a folder, not a network file, and it holds no network-snapshot'):
        export.load_network(tmp_path / 'empty')


def test_a_resume_state_given_as_network_names_the_snapshot_it_belongs_to(exported, tmp_path):
    _networks, pkl, _dest = exported
    state = resume.resume_state(dict(cur_nimg=40000), {}, None, [dict(rng=None, loss=None, averages=None)],
                                dnnlib.EasyDict(), snapshot_pkl=pkl)
    path = tmp_path / 'network-snapshot-000040.resume.pt'
    resume.save_resume_state(path, state)
    with pytest.raises(export.NetworkFileError) as info:
        export.load_network(path)
    assert str(info.value) == (f'{path}: a resume state (optimizers and progress of a run), not a network file; '
                               f'the networks are in the snapshot written with it: network-snapshot-000040.pkl')


def test_garbage_file_error_is_one_line(tmp_path):
    path = tmp_path / 'garbage.pkl'
    path.write_bytes(b'\x80\x04garbage' * 10)
    with pytest.raises(export.NetworkFileError) as info:
        export.load_network(path)
    assert str(info.value).startswith(f'{path}: cannot read network pickle') and '\n' not in str(info.value)


def test_class_names_travel_through_the_weights_only_file(tmp_path):
    networks = dict(helpers.make_networks(c_dim=2), class_names=['cat', 'dog'])
    pkl = helpers.write_snapshot(tmp_path / 'named.pkl', networks)
    assert export.load_network(pkl)['class_names'] == ['cat', 'dog']
    assert helpers.run_cli(export.main, [f'--network={pkl}', f'--dest={tmp_path / "named.pt"}']).exit_code == 0
    assert export.load_network(tmp_path / 'named.pt')['class_names'] == ['cat', 'dog']
    assert export.load_network(helpers.write_snapshot(tmp_path / 'plain.pkl', helpers.make_networks()))['class_names'] is None
