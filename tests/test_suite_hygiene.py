"""The suite's own hygiene (tests/conftest.py): it stops in one line, before any test, when its temporary folder's
disk is nearly full, and no test writes into the user's dnnlib cache."""

import collections
import os
import shutil
import subprocess
import sys

import dnnlib
from tests import conftest

_Usage = collections.namedtuple('_Usage', 'total used free')


def test_too_little_room_is_one_line_naming_the_folder_and_what_it_has(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(shutil, 'disk_usage', lambda path: seen.append(path) or _Usage(0, 0, 300 << 20))
    error = conftest.temp_room_error(tmp_path / 'not' / 'yet', need=1 << 30)
    assert seen == [str(tmp_path)]  # The nearest folder that exists is asked.
    assert error == (f'the tests need about 1.0 GB free for temporary files in {tmp_path}, which has 300 MB: '
                     'free some space, or point TMPDIR or --basetemp elsewhere')
    assert conftest.temp_room_error(tmp_path, need=300 << 20) is None


def test_pytest_exits_before_running_a_test_when_the_room_is_short(tmp_path):
    (tmp_path / 'conftest.py').write_text(
        f'import sys\nsys.path.insert(0, {conftest.REPO_ROOT!r})\nfrom tests import conftest as suite\n'
        f'suite.SUITE_TEMP_NEED = {shutil.disk_usage(tmp_path).total + 1}  # More than the disk holds.\n'
        'pytest_sessionstart = suite.pytest_sessionstart\n')
    probe = tmp_path / 'test_probe.py'
    probe.write_text('def test_runs():\n    open(__file__ + ".ran", "w").close()\n')
    result = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', str(probe),
                             f'--basetemp={tmp_path / "base"}'], cwd=tmp_path, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'the tests need about' in result.stdout and f'temporary files in {tmp_path}, which has' in result.stdout
    assert not os.path.exists(str(probe) + '.ran')


def test_each_test_has_a_dnnlib_cache_of_its_own_inside_the_suites_temporary_folder(tmp_path_factory):
    folder = dnnlib.util.make_cache_dir_path('gan-metrics')
    base = str(tmp_path_factory.getbasetemp())
    assert os.path.commonpath([folder, base]) == base and not os.listdir(os.path.dirname(folder))
