"""Loading network pickles: our snapshots, official stylegan2-ada-pytorch layout, and the errors for what cannot load."""

import io
import pickle

import pytest
import torch

from tests import legacy_helpers as helpers
from training import legacy
from tests import limits


@pytest.fixture(autouse=True)
def _no_source_ran():
    helpers.forget_source_execution()
    yield
    helpers.forget_source_execution()


@pytest.fixture(scope='module')
def snapshot():
    return helpers.make_networks(seed=3)


@pytest.fixture(scope='module')
def official_bytes(snapshot):
    return helpers.official_pickle_bytes(snapshot)


def load_bytes(data, **kwargs):
    return legacy.load_network_pkl(io.BytesIO(data), **kwargs)

#----------------------------------------------------------------------------
# Official layout.


def test_official_generators_are_rebuilt_on_our_class_with_the_same_outputs(snapshot, official_bytes):
    from training import networks
    loaded = load_bytes(official_bytes)
    for key in ('G', 'G_ema'):
        assert type(loaded[key]) is networks.Generator, key
        diff = (helpers.generator_output(loaded[key]) - helpers.generator_output(snapshot[key])).abs().max()
        assert diff <= 1e-4, (key, float(diff))
    assert not helpers.source_was_executed()


def test_official_discriminator_is_rebuilt_on_our_class_with_the_same_scores(snapshot, official_bytes):
    from training import networks
    loaded = load_bytes(official_bytes)
    assert type(loaded['D']) is networks.Discriminator
    diff = (helpers.discriminator_output(loaded['D']) - helpers.discriminator_output(snapshot['D'])).abs().max()
    assert diff <= 1e-4, float(diff)
    assert not helpers.source_was_executed()


def test_official_pickle_loads_every_tensor_and_keeps_eval_frozen_state(snapshot, official_bytes):
    loaded = load_bytes(official_bytes)
    for key in ('G', 'D', 'G_ema'):
        ours = dict(list(loaded[key].named_parameters()) + list(loaded[key].named_buffers()))
        theirs = dict(list(snapshot[key].named_parameters()) + list(snapshot[key].named_buffers()))
        assert sorted(ours) == sorted(theirs)
        assert all(torch.equal(ours[name], theirs[name]) for name in ours), key
        assert not loaded[key].training
        assert not any(p.requires_grad for p in loaded[key].parameters())
    assert loaded['training_set_kwargs'] == snapshot['training_set_kwargs']
    assert loaded['augment_pipe'] is None


def test_official_pickle_with_version_6_meta_loads_too(snapshot):
    loaded = load_bytes(helpers.official_pickle_bytes(snapshot, version=6))
    diff = (helpers.generator_output(loaded['G_ema']) - helpers.generator_output(snapshot['G_ema'])).abs().max()
    assert diff <= 1e-4


def test_missing_entries_are_none(snapshot):
    loaded = load_bytes(helpers.official_pickle_bytes(dict(G_ema=snapshot['G_ema'])))
    assert set(loaded) == {'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}
    assert loaded['G'] is None and loaded['D'] is None and loaded['training_set_kwargs'] is None
    assert loaded['G_ema'] is not None


def test_loading_leaves_the_global_random_state_alone(official_bytes):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_bytes(official_bytes)
    assert torch.equal(torch.rand(3), expected)


def test_official_state_with_a_wrong_shape_names_the_tensor(snapshot):
    def tamper(class_name, state):
        if class_name == 'MappingNetwork':
            state['_buffers'] = dict(state['_buffers'], w_avg=torch.zeros(5))
        return state
    data = helpers.official_pickle_bytes(dict(G_ema=snapshot['G_ema']), tamper=tamper)
    with pytest.raises(legacy.LegacyPickleError, match=r'G_ema: "mapping\.w_avg" has shape \[5\]'):
        load_bytes(data)


def test_stylegan3_networks_are_not_mapped_onto_ours():
    source = helpers.booby_trapped_source(helpers.OFFICIAL_NETWORK_CLASSES + ['SynthesisInput'])
    data = pickle.dumps(dict(G_ema=helpers.RawPersistentObject('Generator', source, {})))
    with pytest.raises(legacy.LegacyPickleError, match="class 'Generator'.*allow_code_execution=True"):
        load_bytes(data)
    assert not helpers.source_was_executed()

#----------------------------------------------------------------------------
# Our own snapshots, paths and URLs.


def test_own_snapshot_pickle_loads_with_the_same_outputs(snapshot):
    from training import networks
    loaded = load_bytes(pickle.dumps(snapshot))
    assert type(loaded['G_ema']) is networks.Generator
    assert torch.equal(helpers.generator_output(loaded['G_ema']), helpers.generator_output(snapshot['G_ema']))
    assert torch.equal(helpers.discriminator_output(loaded['D']), helpers.discriminator_output(snapshot['D']))


def test_load_accepts_a_path_a_pathlib_path_and_a_file_url(tmp_path, official_bytes, snapshot):
    path = tmp_path / 'network-snapshot-000000.pkl'
    path.write_bytes(official_bytes)
    expected = helpers.generator_output(snapshot['G_ema'])
    for source in (str(path), path, path.as_uri()):
        loaded = legacy.load_network_pkl(source)
        assert (helpers.generator_output(loaded['G_ema']) - expected).abs().max() <= 1e-4, source


def test_export_load_network_reads_an_official_pickle(tmp_path, official_bytes, snapshot):
    from training import export
    path = tmp_path / 'official.pkl'
    path.write_bytes(official_bytes)
    loaded = export.load_network(str(path))
    diff = (helpers.generator_output(loaded['G_ema']) - helpers.generator_output(snapshot['G_ema'])).abs().max()
    assert diff <= 1e-4
    assert not helpers.source_was_executed()

#----------------------------------------------------------------------------
# What cannot load (no networks needed).


def test_unknown_class_is_an_error_naming_the_class_and_the_option():
    source = helpers.booby_trapped_source(['Widget'])
    data = pickle.dumps(dict(G=helpers.RawPersistentObject('Widget', source, {'value': 3})))
    with pytest.raises(legacy.LegacyPickleError) as info:
        load_bytes(data)
    message = str(info.value)
    assert "'Widget'" in message and 'allow_code_execution=True' in message
    assert '\n' not in message
    assert not helpers.source_was_executed()


def test_unknown_class_loads_from_its_embedded_source_only_when_allowed():
    source = helpers.unique_source('class Widget:\n    def double(self):\n        return 2 * self.value\n')
    data = pickle.dumps(dict(extra=helpers.RawPersistentObject('Widget', source, {'value': 3}),
                             G=torch.nn.Linear(2, 2)))
    loaded = load_bytes(data, allow_code_execution=True)
    assert loaded['extra'].double() == 6


def test_known_class_name_from_another_module_is_not_mapped():
    # 'Generator' in a source that does not define it: not stylegan2-ada's networks module.
    source = helpers.booby_trapped_source(['SomethingElse'])
    data = pickle.dumps(dict(G=helpers.RawPersistentObject('Generator', source, {})))
    with pytest.raises(legacy.LegacyPickleError, match="class 'Generator'"):
        load_bytes(data)
    assert not helpers.source_was_executed()


def test_tensorflow_pickle_is_refused_with_a_conversion_hint():
    with pytest.raises(legacy.LegacyPickleError, match='TensorFlow.*convert'):
        load_bytes(helpers.tensorflow_pickle_bytes())


def test_pickle_that_is_not_a_dict_is_refused():
    with pytest.raises(legacy.LegacyPickleError, match='holds a list, not a dict'):
        load_bytes(pickle.dumps([1, 2]))


def test_dict_without_networks_is_refused():
    with pytest.raises(legacy.LegacyPickleError, match='none of G, G_ema, D'):
        load_bytes(pickle.dumps(dict(training_set_kwargs={})))


def test_network_entry_that_is_not_a_module_is_refused():
    with pytest.raises(legacy.LegacyPickleError, match='G_ema is a str, not a torch module'):
        load_bytes(pickle.dumps(dict(G_ema='generator')))

#----------------------------------------------------------------------------


def test_official_augment_pipe_is_rebuilt_on_our_class_with_its_probability(snapshot):
    from training import augment
    pipe = augment.AugmentPipe(**augment.augpipe_specs['bgc'])
    pipe.p.copy_(torch.as_tensor(0.3))
    loaded = load_bytes(helpers.official_pickle_bytes(dict(snapshot, augment_pipe=pipe)))['augment_pipe']
    assert type(loaded) is augment.AugmentPipe
    assert float(loaded.p) == pytest.approx(0.3)
    assert dict(loaded.init_kwargs) == dict(augment.augpipe_specs['bgc'])
    for name, buffer in pipe.named_buffers():
        assert torch.equal(dict(loaded.named_buffers())[name], buffer), name
    assert not helpers.source_was_executed()


def test_official_pickle_loads_with_plain_pickle_load_in_a_fresh_process(tmp_path, snapshot, official_bytes):
    """Issue 4: plain pickle.load, nothing of ours imported beforehand, embedded source never executed."""
    import subprocess
    import sys
    (tmp_path / 'official.pkl').write_bytes(official_bytes)
    torch.save({'G_ema': helpers.generator_output(snapshot['G_ema']), 'D': helpers.discriminator_output(snapshot['D'])},
               tmp_path / 'expected.pt')
    script = (
        'import pickle, sys, torch\n'
        'with open(sys.argv[1], "rb") as f:\n'
        '    data = pickle.load(f)\n'
        'from tests import legacy_helpers as helpers\n'
        'expected = torch.load(sys.argv[2])\n'
        'assert type(data["G_ema"]).__module__.startswith("training.networks"), type(data["G_ema"])\n'
        'g = (helpers.generator_output(data["G_ema"]) - expected["G_ema"]).abs().max()\n'
        'd = (helpers.discriminator_output(data["D"]) - expected["D"]).abs().max()\n'
        'assert g <= 1e-4 and d <= 1e-4, (float(g), float(d))\n'
        'assert not helpers.source_was_executed()\n'
        'print("plain-load-ok")\n')
    root = str(__import__('pathlib').Path(__file__).resolve().parents[1])
    result = subprocess.run([sys.executable, '-c', script, str(tmp_path / 'official.pkl'), str(tmp_path / 'expected.pt')],
                            cwd=root, capture_output=True, text=True, timeout=limits.seconds(120))
    assert result.returncode == 0 and 'plain-load-ok' in result.stdout, result.stderr[-2000:]
