"""Plumbing with no torch in it: attribute dicts, URL/file opening with a cache, objects built by name, atomic writes, logging."""

import contextlib
import errno
import fcntl
import hashlib
import importlib
import io
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

#----------------------------------------------------------------------------

class EasyDict(dict):
    """A dict whose keys can also be read and written as attributes (`d.key`)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        del self[name]

#----------------------------------------------------------------------------
# Writing files so that a crash never leaves a half-written file under the final name, and a full disk
# or an unwritable place is one line naming the file instead of a traceback.

class WriteError(OSError):
    """An output could not be written for a reason the user must fix (full disk, read-only or unwritable place).

    Its message is one line naming the file; the file's earlier version, if any, is untouched and no
    temporary file is left behind.
    """


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)


def format_bytes(num_bytes):
    """Bytes as a short human-readable size: '512 B', '3.2 MB', '1.5 GB'."""
    for unit in ('B', 'kB', 'MB', 'GB'):
        if abs(num_bytes) < 1000 or unit == 'GB':
            return f'{num_bytes:.0f} {unit}' if unit == 'B' else f'{num_bytes:.1f} {unit}'
        num_bytes /= 1000
    return None  # Not reached.


def free_bytes(path):
    """Free space on the file system holding `path` (or its nearest existing parent), or None if unknown."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None


def write_error(exc, path, needed=None):
    """A WriteError naming `path` for a full-disk or not-writable OSError `exc`; None for any other error.

    needed: bytes the file had reached when the write failed (it needs more than that).
    """
    if isinstance(exc, WriteError):
        return exc
    if not isinstance(exc, OSError):
        return None
    if exc.errno in DISK_FULL_ERRNOS:
        free = free_bytes(path)
        free_text = 'unknown' if free is None else format_bytes(free)
        needs = f', the file needs more than {format_bytes(needed)}' if needed else ''
        return WriteError(f'cannot write {path}: the disk is full ({free_text} free{needs}); free some space or '
                          f'write elsewhere (earlier files are untouched)')
    if exc.errno in NOT_WRITABLE_ERRNOS:
        return WriteError(f'cannot write {path}: {exc.strerror.lower()}; choose a writable place')
    return None


def output_dir_problem(path):
    """Why folder `path` cannot hold outputs (it is a file, lies under a file, or is not writable), or None."""
    path = os.path.abspath(path)
    probe = path
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        return f'{path} is a file, not a folder' if probe == path else f'{path} lies under {probe}, which is a file'
    if not os.access(probe, os.W_OK):
        return f'{probe} is not writable'
    return None


# atomic_write's temporary files: .<name>.squeezegan-XXXXXXXX.tmp beside the target, a pattern no other program
# uses, so that removing what a killed write left behind can never touch anybody else's file.
ATOMIC_TEMP_RE = re.compile(r'^\..+\.squeezegan-[a-z0-9_]{8}\.tmp$')


@contextlib.contextmanager
def atomic_write(path, mode='wb'):
    """Yield a file object on a temporary name beside `path`; rename it onto `path` only if the block succeeds.

    A full disk or an unwritable folder raises WriteError (one line naming `path`) after the temporary
    file is removed.
    """
    if mode not in ('w', 'wb', 'wt'):
        raise ValueError(f'atomic_write: mode must be "w", "wt" or "wb", got {mode!r}')
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=f'.{os.path.basename(path)}.squeezegan-', suffix='.tmp')
    except OSError as exc:
        raise write_error(exc, path) or exc from None
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~_current_umask())
        os.replace(tmp_path, path)
    except BaseException as exc:
        needed = _size_or_none(tmp_path)
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp_path)
        error = write_error(exc, path, needed)
        if error is None or error is exc:
            raise
        raise error from None


def append_atomically(path, data):
    """Append the bytes `data` to the file at `path` (created if missing) by rewriting it through atomic_write: a
    crash or a full disk leaves the earlier content as it was, never a torn line. Writers in other processes (a
    training run and calc_metrics.py adding to one metric-<name>.jsonl) take turns through an flock on the file
    itself, so neither's addition is lost; a writer that finds the file renamed over while it waited retries on
    the new one.
    """
    path = os.fspath(path)
    while True:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
        except OSError as exc:
            raise write_error(exc, path) or exc from None
        try:
            with contextlib.suppress(OSError):  # A file system without flock: one writer at a time is the user's care.
                fcntl.flock(fd, fcntl.LOCK_EX)
            if _names_this_file(path, fd):
                with os.fdopen(os.dup(fd), 'rb') as f:
                    previous = f.read()
                if previous and not previous.endswith(b'\n'):
                    previous += b'\n'
                with atomic_write(path, 'wb') as f:
                    f.write(previous + data)
                return
        finally:
            os.close(fd)  # Releases the lock.


def _names_this_file(path, fd):
    """Whether `path` still names the file open as `fd` (not renamed over since it was opened)."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _size_or_none(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask

#----------------------------------------------------------------------------
# Small formatting helpers.

def format_time(seconds):
    """Seconds as a short human-readable string: '42s', '3m 05s', '2h 07m 00s', '1d 02h 03m'."""
    s = int(round(seconds))
    if s < 60:
        return f'{s}s'
    if s < 60 * 60:
        return f'{s // 60}m {s % 60:02d}s'
    if s < 24 * 60 * 60:
        return f'{s // 3600}h {(s // 60) % 60:02d}m {s % 60:02d}s'
    return f'{s // 86400}d {(s // 3600) % 24:02d}h {(s // 60) % 60:02d}m'

#----------------------------------------------------------------------------
# Tee of stdout/stderr into a log file.

class Logger:
    """Copy everything written to stdout and stderr into `file_name` as well; use as a context manager.

    A log file that cannot be written (a full disk, a read-only place) raises one WriteError naming it, once:
    the file is dropped first, so the message itself and everything after it still reach the console.
    """

    def __init__(self,
        file_name    = None,    # Log file, or None to only pass output through.
        file_mode    = 'w',     # 'w' starts a new log, 'a' appends to an existing one.
        should_flush = True,    # Flush after every write, so the log is current if the run dies.
    ):
        self.file_name = file_name
        try:
            self.file = open(file_name, file_mode) if file_name is not None else None
        except OSError as exc:
            raise write_error(exc, file_name) or exc from None
        self.should_flush = should_flush
        self.stdout = sys.stdout
        self.stderr = sys.stderr
        sys.stdout = self
        sys.stderr = self

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.close()

    def write(self, text):
        if isinstance(text, bytes):
            text = text.decode()
        if len(text) == 0:
            return
        file = self.file
        if file is not None:
            try:
                file.write(text)
            except ValueError:
                pass  # Closed by close() in another thread meanwhile: the console still gets the text.
            except OSError as exc:
                self._drop_file(exc)
        self.stdout.write(text)
        if self.should_flush:
            self.flush()

    def flush(self):
        file = self.file
        if file is not None:
            try:
                file.flush()
            except ValueError:
                pass  # Closed by close() in another thread meanwhile.
            except OSError as exc:
                self._drop_file(exc)
        self.stdout.flush()

    def _drop_file(self, exc):
        """Stop writing the log file, then raise the one line that says why (a WriteError where it can name it)."""
        broken, self.file = self.file, None
        try:
            if broken is not None:
                broken.close()
        except (OSError, ValueError):
            pass  # Its buffer cannot reach the disk either.
        raise write_error(exc, self.file_name) or exc

    def isatty(self):
        return False

    def close(self):
        self.flush()
        if sys.stdout is self:
            sys.stdout = self.stdout
        if sys.stderr is self:
            sys.stderr = self.stderr
        file, self.file = self.file, None  # Other threads stop writing to it before it closes.
        if file is not None:
            try:
                file.close()
            except OSError:
                pass  # Its last buffer cannot reach the disk either; the run already said why.

#----------------------------------------------------------------------------
# Objects built from dicts of kwargs, so configs can name a class and its arguments.

def get_module_from_obj_name(obj_name):
    """Split 'pkg.module.attr.sub' into (imported module, 'attr.sub') using the longest importable prefix."""
    parts = obj_name.split('.')
    for i in range(len(parts), 0, -1):
        module_name = '.'.join(parts[:i])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name is None or not (module_name == err.name or module_name.startswith(err.name + '.')):
                raise  # The module exists but one of its own imports is missing: say so.
            continue
        rest = '.'.join(parts[i:])
        try:
            _get_attr_path(module, rest)
        except AttributeError:
            continue
        return module, rest
    raise ImportError(f'cannot find "{obj_name}": no importable module provides it')


def _get_attr_path(obj, attr_path):
    for part in attr_path.split('.') if attr_path else []:
        obj = getattr(obj, part)
    return obj


def get_obj_by_name(name):
    """The Python object (class, function, constant) named by a dotted path such as 'training.networks.Generator'."""
    module, rest = get_module_from_obj_name(name)
    return _get_attr_path(module, rest)


def call_func_by_name(*args, func_name=None, **kwargs):
    """Call the function named by `func_name` with the remaining arguments."""
    if func_name is None:
        raise ValueError('call_func_by_name: func_name is required')
    func = get_obj_by_name(func_name)
    if not callable(func):
        raise TypeError(f'call_func_by_name: "{func_name}" is not callable')
    return func(*args, **kwargs)


def construct_class_by_name(*args, class_name=None, **kwargs):
    """Instantiate the class named by `class_name` with the remaining arguments."""
    if class_name is None:
        raise ValueError('construct_class_by_name: class_name is required')
    return call_func_by_name(*args, func_name=class_name, **kwargs)

#----------------------------------------------------------------------------
# URLs and the download cache.

def is_url(obj, allow_file_urls=False):
    """True when `obj` is a string holding an http(s) URL (or a file:// URL when allowed)."""
    if not isinstance(obj, str) or '://' not in obj:
        return False
    parsed = urllib.parse.urlparse(obj)
    if parsed.scheme == 'file':
        return allow_file_urls
    return parsed.scheme in ('http', 'https') and bool(parsed.netloc)


def make_cache_dir_path(*paths):
    """Path inside the dnnlib cache: $DNNLIB_CACHE_DIR, else ~/.cache/dnnlib (or a temp folder without a home)."""
    if 'DNNLIB_CACHE_DIR' in os.environ:
        return os.path.join(os.environ['DNNLIB_CACHE_DIR'], *paths)
    home = os.environ.get('HOME') or os.environ.get('USERPROFILE')
    if home:
        return os.path.join(home, '.cache', 'dnnlib', *paths)
    return os.path.join(tempfile.gettempdir(), '.cache', 'dnnlib', *paths)


def url_cache_path(url, cache_dir=None):
    """Where `url` is (or would be) cached: '<cache_dir>/downloads/<md5 of url>_<file name>'."""
    cache_dir = cache_dir if cache_dir is not None else make_cache_dir_path('downloads')
    url_md5 = hashlib.md5(url.encode('utf-8')).hexdigest()
    file_name = os.path.basename(urllib.parse.urlparse(url).path) or 'download'
    file_name = re.sub(r'[^0-9a-zA-Z_.-]', '_', file_name)
    return os.path.join(cache_dir, f'{url_md5}_{file_name}')


def _local_path_of(url_or_path):
    """The local file path for a plain path or a file:// URL."""
    if url_or_path.startswith('file://'):
        parsed = urllib.parse.urlparse(url_or_path)
        path = urllib.request.url2pathname(parsed.path)
        if parsed.netloc not in ('', 'localhost'):
            path = f'//{parsed.netloc}{path}'
        return path
    return os.path.expanduser(url_or_path)


def open_url(url_or_path, cache_dir=None, num_attempts=10, verbose=True, return_filename=False, cache=True):
    """Open a local path, file:// URL or http(s) URL as a binary file object (or return its local file name).

    http(s) URLs are downloaded once into the cache and then read from there, so a machine without
    internet can use a file that was cached (or copied into the cache) beforehand.
    """
    if not isinstance(url_or_path, (str, os.PathLike)):
        raise TypeError(f'open_url: expected a path or URL string, got {type(url_or_path).__name__}')
    url_or_path = os.fspath(url_or_path)
    if not is_url(url_or_path):
        path = _local_path_of(url_or_path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'{url_or_path}: no such file')
        return path if return_filename else open(path, 'rb')

    if return_filename and not cache:
        raise ValueError('open_url: return_filename=True needs cache=True')
    cached = url_cache_path(url_or_path, cache_dir)
    if cache and os.path.isfile(cached):
        return cached if return_filename else open(cached, 'rb')

    data = _download(url_or_path, num_attempts=num_attempts, verbose=verbose, cached=cached)
    if not cache:
        return io.BytesIO(data)
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    # Several processes may download at once: each writes its own temp file, the renames are atomic.
    with atomic_write(cached, 'wb') as f:
        f.write(data)
    return cached if return_filename else open(cached, 'rb')


def _download(url, num_attempts, verbose, cached):
    last_error = None
    for attempt in range(max(num_attempts, 1)):
        if verbose:
            print(f'Downloading {url} ...', end='', flush=True)
        try:
            request = urllib.request.Request(url, headers={'User-Agent': f'squeezegan-{uuid.uuid4().hex[:8]}'})
            with urllib.request.urlopen(request, timeout=60) as response:
                data = response.read()
            if verbose:
                print(' done')
            return data
        except (urllib.error.URLError, OSError) as err:
            last_error = err
            if verbose:
                print(' failed')
            if isinstance(err, urllib.error.HTTPError) and 400 <= err.code < 500:
                break  # Retrying will not make a missing file appear.
            if isinstance(getattr(err, 'reason', None), socket.gaierror):
                break  # No name resolution: offline, retrying will not help.
            if attempt + 1 < num_attempts:
                time.sleep(min(2 ** attempt, 10) * 0.1)
    raise OSError(f'cannot download {url} ({last_error}); without internet, download it elsewhere and '
                  f'pass the local file path instead of the URL, or copy it to {cached}')

#----------------------------------------------------------------------------
# Building classes named in files a user did not write (network pickles, model.pt, training_options.json):
# only names on an allow-list of this package's own classes, checked before anything is imported, since
# construct_class_by_name calls whatever it is given (logging.basicConfig truncating a file, os.system).

class NotAllowedError(ValueError):
    """A file names a class off the allow-list; the message is one line naming the file, the key and the accepted names."""


def check_allowed_name(name, allowed, source, key='class_name'):
    """`name` if it is one of the strings in `allowed`; else NotAllowedError naming `source`, `key` and the accepted names."""
    allowed = tuple(allowed)
    if not isinstance(name, str) or name not in allowed:
        raise NotAllowedError(f'{source}: {key} is {name!r}, which is not a class this package builds from a file; '
                              f'accepted: {", ".join(allowed)}')
    return name


def construct_allowed(kwargs, allowed, source, key='class_name', **extra):
    """Build the class that kwargs['class_name'] names, with the other kwargs and `extra`, only if `allowed` lists it.

    source: the file the kwargs came from, for the error; key: how the message names the class name
    ('training_set_kwargs.class_name'). Keys that are not strings are refused the same way.
    """
    kwargs = dict(kwargs)
    name = check_allowed_name(kwargs.pop('class_name', None), allowed, source, key)
    odd_keys = [k for k in kwargs if not isinstance(k, str)]
    if odd_keys:
        raise NotAllowedError(f'{source}: {key.rsplit(".", 1)[0]} has the key {odd_keys[0]!r}; accepted: '
                              f'argument names of {name}')
    return construct_class_by_name(class_name=name, **kwargs, **extra)

#----------------------------------------------------------------------------
