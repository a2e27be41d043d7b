"""Writes a dataset folder or zip under a temporary name and renames it into place only when complete."""

import contextlib
import os
import secrets
import shutil
import zipfile

import dnnlib


class DestinationError(Exception):
    """The destination cannot be written as asked (exists, is the wrong kind of path)."""


class _Aborted(Exception):
    """Passed into the open contexts on abort, so they discard rather than finish their output."""


def is_nonempty(path):
    if os.path.isdir(path):
        return len(os.listdir(path)) > 0
    return os.path.exists(path) and os.path.getsize(path) > 0


def check_destination(dest, overwrite):
    """Raises DestinationError unless `dest` can be (re)written: new, empty, or overwrite requested."""
    wants_zip = dest.lower().endswith('.zip')
    if wants_zip and os.path.isdir(dest):
        raise DestinationError(f'--dest {dest} is an existing folder; a .zip destination must be a file path')
    if not wants_zip and os.path.exists(dest) and not os.path.isdir(dest):
        raise DestinationError(f'--dest {dest} is an existing file; give a folder path or a path ending in .zip')
    if is_nonempty(dest) and not overwrite:
        raise DestinationError(f'--dest {dest} already exists and is not empty; choose another path or pass --overwrite to replace it')


class DatasetWriter:
    """Context manager: `write(name, data)` files, then `commit()`; without commit nothing is left behind."""

    def __init__(self,
        dest,               # Output folder, or path ending in .zip for an uncompressed zip.
        overwrite = False,  # Replace a non-empty `dest` once the new dataset is complete.
    ):
        check_destination(dest, overwrite)
        self.dest = os.path.abspath(dest)
        self.is_zip = dest.lower().endswith('.zip')
        self._stack = contextlib.ExitStack()
        self._created_dirs = []  # Parent folders we made for `dest`, removed again on abort.
        self._temp_dir = None
        self._zip = None
        self._done = False

    def __enter__(self):
        parent = os.path.dirname(self.dest)
        missing = parent
        while not os.path.exists(missing):
            self._created_dirs.append(missing)  # Deepest first.
            missing = os.path.dirname(missing)
        os.makedirs(parent, exist_ok=True)
        try:
            if self.is_zip:
                handle = self._stack.enter_context(dnnlib.util.atomic_write(self.dest, 'wb'))
                self._zip = self._stack.enter_context(zipfile.ZipFile(handle, 'w', compression=zipfile.ZIP_STORED))
            else:
                self._temp_dir = self._sibling('tmp')
                os.mkdir(self._temp_dir)  # Not mkdtemp: the finished folder should get the usual permissions.
        except BaseException:
            self.abort()
            raise
        return self

    def _sibling(self, tag):
        # Same folder as dest, so the final rename is atomic; hidden, and unique per run.
        return os.path.join(os.path.dirname(self.dest), f'.{os.path.basename(self.dest)}.{tag}-{os.getpid()}-{secrets.token_hex(4)}')

    def write(self, archive_name, data):
        """Stores bytes (or str, as UTF-8) at a '/'-separated path inside the dataset."""
        if isinstance(data, str):
            data = data.encode('utf-8')
        if self._zip is not None:
            self._zip.writestr(archive_name, data)
            return
        path = os.path.join(self._temp_dir, *archive_name.split('/'))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(data)

    def commit(self):
        """Finishes the dataset and moves it onto `dest` (replacing what --overwrite allowed)."""
        if self.is_zip:
            self._stack.close()  # Closes the zip, then atomic_write renames the temp file onto dest.
        else:
            self._replace_folder()
        self._done = True

    def _replace_folder(self):
        old = None
        if os.path.isdir(self.dest):
            old = self._sibling('old')
            os.rename(self.dest, old)
        try:
            os.rename(self._temp_dir, self.dest)
        except BaseException:
            if old is not None:
                os.rename(old, self.dest)  # Put the previous dataset back.
            raise
        self._temp_dir = None
        if old is not None:
            shutil.rmtree(old)

    def abort(self):
        """Removes everything written so far; `dest` is left as it was."""
        if self._done:
            return
        self._done = True
        # Exiting with an exception makes atomic_write delete its temporary file.
        with contextlib.suppress(_Aborted):
            self._stack.__exit__(_Aborted, _Aborted('dataset conversion aborted'), None)
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
        for folder in self._created_dirs:
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # Only folders we made, and only while empty.

    def __exit__(self, exc_type, exc_value, traceback):
        self.abort()  # No-op after commit().
        return False
