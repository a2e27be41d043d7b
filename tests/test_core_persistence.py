"""Persistence: constructor arguments, the stylegan2-ada meta format, and loading without running pickled code."""

import copy
import pickle

import pytest
import torch

from tests import core_helpers
from torch_utils import persistence


@pytest.fixture
def toy(tmp_path):
    return core_helpers.import_toy_module(str(tmp_path))


def _pickle_official_style(meta):
    """Bytes of a pickle that calls _reconstruct_persistent_obj(meta), as stylegan2-ada-pytorch writes them."""
    class OfficialStyle:
        def __reduce__(self):
            return (persistence._reconstruct_persistent_obj, (meta,))
    return pickle.dumps(OfficialStyle())


def test_persistent_object_keeps_deep_copies_of_constructor_arguments(toy):
    tags = ['a']
    obj = toy.Scaler(3, gain=1.5, tags=tags)
    tags.append('b')
    assert obj.init_args == (3,)
    assert obj.init_kwargs == {'gain': 1.5, 'tags': ['a']}
    assert obj.init_kwargs.gain == 1.5  # EasyDict
    obj.init_kwargs['gain'] = 9.0
    assert obj.init_kwargs.gain == 1.5


def test_is_persistent_is_true_for_decorated_classes_and_their_instances(toy):
    assert persistence.is_persistent(toy.Scaler)
    assert persistence.is_persistent(toy.Scaler(2))
    assert not persistence.is_persistent(torch.nn.Linear)
    assert not persistence.is_persistent(torch.nn.Linear(2, 2))


def test_pickle_meta_has_the_stylegan2_ada_layout(toy):
    func, (meta,) = toy.Scaler(2).__reduce__()
    assert func is persistence._reconstruct_persistent_obj
    assert meta['type'] == 'class'
    assert meta['version'] == 6
    assert meta['class_name'] == 'Scaler'
    assert meta['module_src'] == core_helpers.TOY_MODULE_SOURCE
    assert meta['module_name'] == toy.__name__
    assert meta['state']['_init_args'] == (2,)
    assert set(meta['state']['_parameters']) == {'weight'}


def test_unpicklable_constructor_argument_fails_at_construction(toy):
    with pytest.raises(TypeError, match="'tags'.*cannot be pickled"):
        toy.Scaler(2, tags=[lambda: None])


def test_same_process_round_trip_and_deepcopy_use_the_loaded_class(toy):
    pair = toy.Pair(3)
    for clone in (pickle.loads(pickle.dumps(pair)), copy.deepcopy(pair)):
        assert type(clone) is toy.Pair and type(clone.first) is toy.Scaler
        assert clone.init_args == (3,)
        x = torch.ones(3)
        assert torch.equal(clone(x), pair(x))


@pytest.fixture(scope='module')
def fresh_process_results(tmp_path_factory):
    """Pickle a Pair, then load it in a new interpreter that cannot import the toy module."""
    folder = tmp_path_factory.mktemp('defs')
    toy = core_helpers.import_toy_module(str(folder))
    pair = toy.Pair(4)
    expected = pair(torch.linspace(-1, 1, 4)).tolist()
    pkl = folder.parent / 'pair.pkl'
    pkl.write_bytes(pickle.dumps(pair))
    result = core_helpers.run_python(f'''
        import json, pickle, importlib.util, torch
        from torch_utils import persistence
        can_import = importlib.util.find_spec({toy.__name__!r}) is not None
        data = open({str(pkl)!r}, 'rb').read()
        try:
            pickle.loads(data)
            refusal = None
        except persistence.PersistenceError as error:
            refusal = str(error)
        with persistence.allow_source_execution():
            pair = pickle.loads(data)
        again = pickle.loads(pickle.dumps(pair))  # Source already known: no opt-in needed.
        print(json.dumps(dict(can_import=can_import, refusal=refusal, class_name=type(pair).__name__,
                              init_args=list(pair.init_args), persistent=persistence.is_persistent(pair),
                              output=pair(torch.linspace(-1, 1, 4)).tolist(),
                              again=again(torch.linspace(-1, 1, 4)).tolist())))
    ''', cwd=str(folder.parent))
    return result, expected


def test_fresh_process_refuses_embedded_source_without_opt_in(fresh_process_results):
    result, _ = fresh_process_results
    assert not result['can_import']
    # Children unpickle first, so the refusal names the inner class and the module it came from.
    assert "'Scaler' from module 'toy_persistent_" in result['refusal']
    assert 'allow_source_execution()' in result['refusal']


def test_fresh_process_round_trip_with_opt_in_reproduces_outputs(fresh_process_results):
    result, expected = fresh_process_results
    assert result['class_name'] == 'Pair' and result['persistent']
    assert result['init_args'] == [4]
    assert result['output'] == pytest.approx(expected)
    assert result['again'] == pytest.approx(expected)


def _official_meta(toy, class_name, version=6):
    """Meta as official pickles carry it: no module_name, source that must never run."""
    state = toy.Scaler(3, gain=2.0).__reduce__()[1][0]['state']
    return dict(type='class', version=version, class_name=class_name, state=state,
                module_src='raise RuntimeError("pickled source was executed")\nclass ToyScaler:\n    pass\n')


def test_class_resolver_maps_official_meta_onto_our_class_without_running_source(toy):
    data = _pickle_official_style(_official_meta(toy, 'ToyScaler'))
    seen = []

    def resolver(meta):
        seen.append((meta.class_name, 'ToyScaler' in persistence.defined_names(meta.module_src)))
        return toy.Scaler if meta.class_name == 'ToyScaler' else None

    with persistence.class_resolver(resolver):
        obj = pickle.loads(data)
    assert seen == [('ToyScaler', True)]
    assert type(obj) is toy.Scaler
    assert torch.equal(obj.weight, torch.tensor([0.0, 2.0, 4.0]))


def test_class_resolver_is_scoped_to_its_block(toy):
    data = _pickle_official_style(_official_meta(toy, 'ToyScaler'))
    with persistence.class_resolver(lambda meta: toy.Scaler):
        pickle.loads(data)
    with pytest.raises(persistence.PersistenceError, match='ToyScaler'):
        pickle.loads(data)


def test_class_resolver_rebuild_constructs_ours_and_copies_pickled_tensors(toy):
    meta = _official_meta(toy, 'ToyScaler')
    meta['state']['_parameters']['weight'] = torch.nn.Parameter(torch.tensor([7.0, 8.0, 9.0]))
    meta['state']['some_attribute_we_do_not_have'] = 'ignored'
    with persistence.class_resolver(lambda m: toy.Scaler, rebuild=True):
        obj = pickle.loads(_pickle_official_style(meta))
    assert type(obj) is toy.Scaler
    assert obj.init_kwargs == {'gain': 2.0}
    assert torch.equal(obj.weight, torch.tensor([7.0, 8.0, 9.0]))
    assert not hasattr(obj, 'some_attribute_we_do_not_have')


def test_class_resolver_rebuild_rejects_tensor_shape_mismatch(toy):
    meta = _official_meta(toy, 'ToyScaler')
    meta['state']['_buffers']['offset'] = torch.zeros(5)
    with persistence.class_resolver(lambda m: toy.Scaler, rebuild=True):
        with pytest.raises(persistence.PersistenceError, match='"offset" has shape \\[5\\] in the pickle, \\[3\\] in our'):
            pickle.loads(_pickle_official_style(meta))


def test_meta_version_4_is_read_and_unknown_versions_are_refused(toy):
    with persistence.class_resolver(lambda m: toy.Scaler):
        assert type(pickle.loads(_pickle_official_style(_official_meta(toy, 'ToyScaler', version=4)))) is toy.Scaler
        with pytest.raises(persistence.PersistenceError, match='version 99'):
            pickle.loads(_pickle_official_style(_official_meta(toy, 'ToyScaler', version=99)))


def test_import_hook_rewrites_meta_before_lookup(toy):
    def rename(meta):
        if meta.class_name == 'HookOnlyOldName':
            meta.class_name = 'Scaler'
            meta.module_name = toy.__name__
        return meta
    persistence.import_hook(rename)
    obj = pickle.loads(_pickle_official_style(_official_meta(toy, 'HookOnlyOldName')))
    assert type(obj) is toy.Scaler


def test_main_module_name_is_trusted_only_when_its_source_matches(toy):
    # Every script is '__main__': a pickle from another script must not pick up this one's classes.
    meta = _official_meta(toy, 'Scaler')
    meta['module_name'] = '__main__'
    with pytest.raises(persistence.PersistenceError, match="'Scaler' from module '__main__'"):
        pickle.loads(_pickle_official_style(meta))


def test_pickle_naming_a_moved_module_loads_from_its_new_home(toy):
    meta = _official_meta(toy, 'Scaler')
    meta['module_name'] = f'{toy.__name__}_old_home'
    with pytest.raises(persistence.PersistenceError, match='no installed module provides it'):
        pickle.loads(_pickle_official_style(meta))
    persistence.module_moved(meta['module_name'], toy.__name__)
    obj = pickle.loads(_pickle_official_style(meta))
    assert type(obj) is toy.Scaler and torch.equal(obj.weight, toy.Scaler(*meta['state']['_init_args']).weight)
