"""python -m training.legacy: re-saving an official pickle with our classes, and its one-line errors."""

import pathlib
import pickle
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from tests import legacy_helpers as helpers
from training import legacy
from tests import limits


def run(*args):
    return CliRunner().invoke(legacy.convert_network_pickle, [str(arg) for arg in args])


def error_line(result):
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output  # Not an uncaught exception.
    lines = [line for line in result.output.splitlines() if line.startswith('Error')]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.slow
def test_converted_pickle_loads_with_plain_pickle_in_a_fresh_process(tmp_path):
    snapshot = helpers.make_networks(seed=4)
    source, dest = tmp_path / 'official.pkl', tmp_path / 'ours.pkl'
    source.write_bytes(helpers.official_pickle_bytes(snapshot))
    result = run('--source', source, '--dest', dest)
    assert result.exit_code == 0, result.output
    expected = helpers.generator_output(snapshot['G_ema'])
    torch.save(expected, tmp_path / 'expected.pt')
    script = (f'import pickle, torch\n'
              f'from tests import legacy_helpers as helpers\n'
              f'data = pickle.load(open({str(dest)!r}, "rb"))\n'
              f'assert type(data["G_ema"]).__module__.startswith("training.networks"), type(data["G_ema"])\n'
              f'diff = (helpers.generator_output(data["G_ema"]) - torch.load({str(tmp_path / "expected.pt")!r})).abs().max()\n'
              f'assert diff <= 1e-4, float(diff)\n'
              f'assert not helpers.source_was_executed()\n')
    root = pathlib.Path(__file__).parent.parent
    subprocess.run([sys.executable, '-c', script], check=True, cwd=root, timeout=limits.seconds(120))


def test_existing_destination_is_kept_without_overwrite(tmp_path):
    source, dest = tmp_path / 'a.pkl', tmp_path / 'b.pkl'
    source.write_bytes(pickle.dumps({}))
    dest.write_bytes(b'precious')
    assert 'pass --overwrite' in error_line(run('--source', source, '--dest', dest))
    assert dest.read_bytes() == b'precious'


def test_destination_equal_to_source_is_refused(tmp_path):
    source = tmp_path / 'a.pkl'
    source.write_bytes(b'precious')
    assert 'is the source file' in error_line(run('--source', source, '--dest', source, '--overwrite'))
    assert source.read_bytes() == b'precious'


def test_unreadable_source_is_one_line_naming_the_file(tmp_path):
    source = tmp_path / 'garbage.pkl'
    source.write_bytes(b'not a pickle at all')
    line = error_line(run('--source', source, '--dest', tmp_path / 'out.pkl'))
    assert str(source) in line and 'cannot load network pickle' in line
    assert not (tmp_path / 'out.pkl').exists()


def test_unknown_class_in_source_names_the_option(tmp_path):
    source = tmp_path / 'custom.pkl'
    source.write_bytes(pickle.dumps({'G': helpers.RawPersistentObject('Widget', helpers.booby_trapped_source(['Widget']), {})}))
    line = error_line(run('--source', source, '--dest', tmp_path / 'out.pkl'))
    assert "'Widget'" in line and 'allow_code_execution' in line
