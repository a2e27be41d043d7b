"""calc_metrics.py builds a dataset named in a file (model.pt, pickle, training_options.json) only from an allow-list."""

import json
import os

import pytest
from click.testing import CliRunner

import calc_metrics
import dnnlib
from metrics import metric_utils
from tests import generate_helpers
from tests import metrics_helpers

HOSTILE = {
    'logging.basicConfig': lambda victim, marker: dict(filename=str(victim), filemode='w'),
    'os.system': lambda victim, marker: dict(command=f'touch {marker}; : > {victim}'),
}


def networks_naming(dataset_kwargs):
    networks = generate_helpers.make_networks()
    networks['training_set_kwargs'] = dnnlib.EasyDict(dataset_kwargs)
    return networks


def model_pt(folder, dataset_kwargs):
    from training import export  # pylint: disable=import-outside-toplevel
    path = str(folder / 'model.pt')
    export.save_weights_only(networks_naming(dataset_kwargs), path)
    return path, path


def network_pickle(folder, dataset_kwargs):
    path = generate_helpers.write_snapshot(folder / 'net.pkl', networks_naming(dataset_kwargs))
    return path, path


def training_options(folder, dataset_kwargs):
    (folder / 'run').mkdir()
    options = folder / 'run' / 'training_options.json'
    options.write_text(json.dumps(dict(training_set_kwargs=dataset_kwargs)))
    pkl = generate_helpers.write_snapshot(folder / 'run' / 'network-snapshot-000000.pkl', generate_helpers.make_networks())
    return pkl, str(options)


@pytest.mark.parametrize('write', [model_pt, network_pickle, training_options])
@pytest.mark.parametrize('name', sorted(HOSTILE))
def test_a_file_naming_another_callable_is_refused_in_one_line_and_nothing_runs(tmp_path, write, name):
    victim, marker = tmp_path / 'victim.txt', tmp_path / 'payload-ran'
    victim.write_text('keep me')
    network, source = write(tmp_path, dict(class_name=name, **HOSTILE[name](victim, marker)))
    result = CliRunner().invoke(calc_metrics.main, [f'--network={network}', '--metrics=fid1k_full', '--device=cpu'])
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output
    errors = [line for line in result.output.splitlines() if line.startswith('Error:')]
    assert errors == [f"Error: {source}: training_set_kwargs.class_name is '{name}', which is not a class this package "
                      f"builds from a file; accepted: {', '.join(metric_utils.DATASET_CLASSES)}; pass --data to use a "
                      f"dataset folder or zip instead"], result.output
    assert victim.read_text() == 'keep me' and not os.path.exists(marker)


@pytest.mark.parametrize('class_name', metric_utils.DATASET_CLASSES)
def test_the_dataset_class_under_either_name_is_built(tmp_path, class_name):
    data = metrics_helpers.write_image_folder(tmp_path / 'data', num_images=4).path
    network, _source = network_pickle(tmp_path, dict(class_name=class_name, path=data))
    G, network_kwargs = calc_metrics.load_generator(network)
    kwargs = calc_metrics.resolve_dataset_kwargs(None, None, G, None, network_kwargs, network)
    assert kwargs.class_name == class_name and kwargs.path == data


def test_data_replaces_a_refused_recorded_dataset(tmp_path):
    data = metrics_helpers.write_image_folder(tmp_path / 'data', num_images=4).path
    network, _source = network_pickle(tmp_path, dict(class_name='os.system', command='true'))
    G, network_kwargs = calc_metrics.load_generator(network)
    kwargs = calc_metrics.resolve_dataset_kwargs(data, None, G, None, network_kwargs, network)
    assert kwargs.class_name == 'training.dataset.ImageFolderDataset' and kwargs.path == data


def test_recorded_arguments_the_dataset_does_not_take_are_one_line(tmp_path):
    network, _source = network_pickle(tmp_path, dict(class_name='training.dataset.ImageFolderDataset', path='x',
                                                     colour='blue'))
    result = CliRunner().invoke(calc_metrics.main, [f'--network={network}', '--metrics=fid1k_full', '--device=cpu'])
    errors = [line for line in result.output.splitlines() if line.startswith('Error:')]
    assert len(errors) == 1 and 'net.pkl: training_set_kwargs do not fit' in errors[0] and 'colour' in errors[0]


def test_metrics_build_only_allowed_datasets_whoever_calls_them(tmp_path):
    victim = tmp_path / 'victim.txt'
    victim.write_text('keep me')
    opts = metric_utils.MetricOptions(dataset_kwargs=dict(class_name='logging.basicConfig', filename=str(victim),
                                                          filemode='w'), device='cpu')
    with pytest.raises(dnnlib.util.NotAllowedError, match="class_name is 'logging.basicConfig'"):
        metric_utils.make_label_sampler(opts, c_dim=2, rng=None)
    assert victim.read_text() == 'keep me'
