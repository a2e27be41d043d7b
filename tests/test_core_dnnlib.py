"""dnnlib.util: opening paths and URLs with an offline cache, atomic writes, objects by name, logging."""

import errno
import io
import json
import multiprocessing
import os
import socket
import sys
import tempfile
import urllib.error
import urllib.request

import pytest

import dnnlib
from dnnlib import util
from tests import limits

URL = 'https://example.invalid/networks/tiny-net.pkl'


@pytest.fixture
def offline(monkeypatch):
    """Every download attempt fails the way a machine without DNS fails; attempts are counted."""
    attempts = []

    def no_network(request, timeout=None):
        attempts.append(getattr(request, 'full_url', request))
        raise urllib.error.URLError(socket.gaierror(-2, 'Name or service not known'))
    monkeypatch.setattr(urllib.request, 'urlopen', no_network)
    return attempts


def test_open_url_reads_a_plain_local_path(tmp_path):
    path = tmp_path / 'a.bin'
    path.write_bytes(b'local bytes')
    with util.open_url(str(path)) as f:
        assert f.read() == b'local bytes'
    assert util.open_url(str(path), return_filename=True) == str(path)


def test_open_url_reads_a_file_url(tmp_path):
    path = tmp_path / 'b.bin'
    path.write_bytes(b'file url bytes')
    with util.open_url(path.as_uri()) as f:
        assert f.read() == b'file url bytes'


def test_open_url_names_a_missing_local_file(tmp_path):
    missing = str(tmp_path / 'nope.pkl')
    with pytest.raises(FileNotFoundError, match='nope.pkl'):
        util.open_url(missing)


def test_open_url_uses_a_precached_url_without_network(tmp_path, monkeypatch, offline):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    cached = util.url_cache_path(URL)
    assert cached.startswith(str(tmp_path / 'cache'))
    os.makedirs(os.path.dirname(cached))
    with open(cached, 'wb') as f:
        f.write(b'cached network')
    with util.open_url(URL) as f:
        assert f.read() == b'cached network'
    assert util.open_url(URL, return_filename=True) == cached
    assert offline == []


def test_open_url_offline_and_uncached_fails_with_one_clear_line(tmp_path, offline):
    with pytest.raises(OSError) as info:
        util.open_url(URL, cache_dir=str(tmp_path), verbose=False)
    message = str(info.value)
    assert '\n' not in message
    assert URL in message and 'local file path' in message
    assert len(offline) == 1  # No DNS: retrying cannot help, so it stops at once.


def test_open_url_downloads_once_then_reads_the_cache(tmp_path, monkeypatch):
    downloads = []

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def fake_urlopen(request, timeout=None):
        downloads.append(request.full_url)
        return Response(b'downloaded bytes')
    monkeypatch.setattr(urllib.request, 'urlopen', fake_urlopen)
    for _ in range(2):
        with util.open_url(URL, cache_dir=str(tmp_path), verbose=False) as f:
            assert f.read() == b'downloaded bytes'
    assert downloads == [URL]
    assert [name for name in os.listdir(tmp_path) if name.endswith('.tmp')] == []


def test_is_url_accepts_http_and_only_optionally_file_urls():
    assert util.is_url('https://host/x.pkl') and util.is_url('http://host/x')
    assert not util.is_url('/data/x.pkl') and not util.is_url('file:///data/x.pkl')
    assert util.is_url('file:///data/x.pkl', allow_file_urls=True)


def test_atomic_write_replaces_the_file_only_when_the_block_succeeds(tmp_path):
    path = tmp_path / 'snapshot.pkl'
    path.write_bytes(b'old')
    with pytest.raises(RuntimeError):
        with util.atomic_write(str(path)) as f:
            f.write(b'half of the new')
            raise RuntimeError('crash while writing')
    assert path.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['snapshot.pkl']  # No temp file left behind.
    with util.atomic_write(str(path)) as f:
        f.write(b'new')
    assert path.read_bytes() == b'new'
    assert os.listdir(tmp_path) == ['snapshot.pkl']


def test_atomic_write_on_a_full_disk_names_the_file_and_leaves_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / 'snapshot.pkl'
    path.write_bytes(b'old')
    real_mkstemp = tempfile.mkstemp

    def mkstemp_on_dev_full(*args, **kwargs):  # The OS answers ENOSPC exactly as on a full disk.
        fd, tmp = real_mkstemp(*args, **kwargs)
        os.close(fd)
        return os.open('/dev/full', os.O_WRONLY), tmp
    monkeypatch.setattr(tempfile, 'mkstemp', mkstemp_on_dev_full)
    with pytest.raises(util.WriteError) as info:
        with util.atomic_write(str(path)) as f:
            f.write(b'x' * 100_000)
    message = str(info.value)
    assert '\n' not in message and str(path) in message and 'disk is full' in message and 'free' in message
    assert path.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['snapshot.pkl']


def test_atomic_write_into_a_read_only_place_is_one_line(tmp_path, monkeypatch):
    def read_only(*_args, **_kwargs):
        raise OSError(errno.EROFS, 'Read-only file system')
    monkeypatch.setattr(tempfile, 'mkstemp', read_only)
    with pytest.raises(util.WriteError, match=r'cannot write .*out\.png: read-only file system; choose a writable place'):
        with util.atomic_write(str(tmp_path / 'out.png')):
            pass


def test_atomic_write_passes_other_errors_through(tmp_path):
    with pytest.raises(OSError) as info:
        with util.atomic_write(str(tmp_path / 'x.bin')):
            raise OSError(errno.EIO, 'Input/output error')
    assert not isinstance(info.value, util.WriteError)
    assert os.listdir(tmp_path) == []


def _append_lines(path, writer, count, start):
    start.wait()
    for index in range(count):
        util.append_atomically(path, f'{{"writer": {writer}, "index": {index}}}\n'.encode())


def test_appends_from_concurrent_processes_are_never_lost(tmp_path):
    # A training run and calc_metrics.py add to one metric-<name>.jsonl: rewriting it without taking turns loses
    # lines (without the flock, about half of these 4 x 25 go missing here).
    path = str(tmp_path / 'metric-fid.jsonl')
    context = multiprocessing.get_context('spawn')
    start = context.Event()
    writers = [context.Process(target=_append_lines, args=(path, writer, 25, start)) for writer in range(4)]
    for process in writers:
        process.start()
    start.set()
    for process in writers:
        process.join(limits.seconds(120))
    assert [process.exitcode for process in writers] == [0, 0, 0, 0]
    with open(path) as f:
        lines = [json.loads(line) for line in f]
    assert sorted((line['writer'], line['index']) for line in lines) == [(w, i) for w in range(4) for i in range(25)]
    for writer in range(4):  # Each writer's lines in its own order.
        assert [line['index'] for line in lines if line['writer'] == writer] == list(range(25))
    assert sorted(os.listdir(tmp_path)) == ['metric-fid.jsonl']


def test_append_keeps_earlier_lines_and_ends_an_unterminated_one(tmp_path):
    path = tmp_path / 'log.jsonl'
    util.append_atomically(path, b'{"a": 1}\n')
    path.write_bytes(path.read_bytes() + b'{"torn"')  # Written by something else, without its newline.
    util.append_atomically(path, b'{"b": 2}\n')
    assert path.read_bytes() == b'{"a": 1}\n{"torn"\n{"b": 2}\n'


def test_output_dir_problem_names_a_file_in_the_way(tmp_path):
    (tmp_path / 'file').write_text('x')
    assert util.output_dir_problem(str(tmp_path / 'new' / 'folder')) is None
    assert util.output_dir_problem(str(tmp_path / 'file')) == f'{tmp_path / "file"} is a file, not a folder'
    assert util.output_dir_problem(str(tmp_path / 'file' / 'sub')) == \
        f'{tmp_path / "file" / "sub"} lies under {tmp_path / "file"}, which is a file'


def test_format_bytes_picks_a_readable_unit():
    assert [util.format_bytes(n) for n in (512, 2_500, 3_200_000, 1.5e9, 4e12)] == \
        ['512 B', '2.5 kB', '3.2 MB', '1.5 GB', '4000.0 GB']


def test_construct_class_by_name_passes_arguments():
    obj = util.construct_class_by_name(class_name='dnnlib.util.EasyDict', a=1, b='two')
    assert isinstance(obj, dnnlib.EasyDict) and obj.b == 'two'
    assert util.call_func_by_name(3, func_name='dnnlib.util.format_time') == '3s'


def test_construct_class_by_name_rejects_unknown_names():
    with pytest.raises(ImportError, match='dnnlib.util.NoSuchClass'):
        util.construct_class_by_name(class_name='dnnlib.util.NoSuchClass')
    with pytest.raises(ValueError, match='class_name is required'):
        util.construct_class_by_name()


def test_easydict_reads_and_writes_keys_as_attributes():
    d = dnnlib.EasyDict(x=1)
    d.y = 2
    assert d == {'x': 1, 'y': 2} and d.x == 1
    with pytest.raises(AttributeError):
        d.missing


@pytest.mark.parametrize('seconds, text', [(42, '42s'), (185, '3m 05s'), (7620, '2h 07m 00s'), (93780, '1d 02h 03m')])
def test_format_time_is_short_and_readable(seconds, text):
    assert util.format_time(seconds) == text


def test_logger_tees_stdout_into_the_log_file(tmp_path, capsys):
    log = tmp_path / 'log.txt'
    with util.Logger(file_name=str(log)):
        print('hello log')
    assert log.read_text() == 'hello log\n'
    assert 'hello log' in capsys.readouterr().out
    assert not isinstance(sys.stdout, util.Logger)


ALLOWED = ('dnnlib.util.EasyDict',)


def test_construct_allowed_builds_a_listed_class_with_its_arguments():
    obj = util.construct_allowed(dict(class_name='dnnlib.util.EasyDict', a=1), ALLOWED, source='opts.json', b=2)
    assert isinstance(obj, dnnlib.EasyDict) and obj == {'a': 1, 'b': 2}


@pytest.mark.parametrize('name', ['logging.basicConfig', 'os.system', 'builtins.open', None, ['dnnlib.util.EasyDict']])
def test_construct_allowed_refuses_anything_else_in_one_line_naming_file_key_and_accepted(name, tmp_path):
    victim = tmp_path / 'victim.txt'
    victim.write_text('keep me')
    kwargs = dict(class_name=name, filename=str(victim), filemode='w', command=f'rm {victim}')
    with pytest.raises(util.NotAllowedError) as error:
        util.construct_allowed(kwargs, ALLOWED, source='evil/model.pt', key='training_set_kwargs.class_name')
    assert str(error.value) == (f'evil/model.pt: training_set_kwargs.class_name is {name!r}, which is not a class this '
                                f'package builds from a file; accepted: dnnlib.util.EasyDict')
    assert victim.read_text() == 'keep me'


def test_construct_allowed_checks_the_name_before_importing_anything():
    name = 'tests.no_such_module_imported_by_name.Thing'
    with pytest.raises(util.NotAllowedError):
        util.construct_allowed(dict(class_name=name), ALLOWED, source='x.json')
    assert 'tests.no_such_module_imported_by_name' not in sys.modules


def test_construct_allowed_refuses_keys_that_are_not_argument_names():
    with pytest.raises(util.NotAllowedError, match=r"x.pt: training_set_kwargs has the key 3"):
        util.construct_allowed({'class_name': 'dnnlib.util.EasyDict', 3: 'x'}, ALLOWED, source='x.pt',
                               key='training_set_kwargs.class_name')
