"""Writes a dataset folder or zip under a temporary name and renames it into place only when complete."""

import contextlib
import os
import re
import secrets
import shutil
import zipfile

import dnnlib


class DestinationError(Exception):
    """The destination cannot be written as asked (exists, is the wrong kind of path, cannot be created)."""


WriteError = dnnlib.util.WriteError  # A full disk or read-only place while writing; one line naming the file.

# What a dataset folder holds: dataset.json and 00000/img00000000.png files (dataset_tool.py's layout).
_DATASET_ENTRY = re.compile(r'dataset\.json|\d{5}|\d{5}/img\d{8}\.png')


class _Aborted(Exception):
    """Passed into the open contexts on abort, so they discard rather than finish their output."""


def is_nonempty(path):
    if os.path.isdir(path):
        return len(os.listdir(path)) > 0
    return os.path.exists(path) and os.path.getsize(path) > 0


def first_foreign_file(folder):
    """The first path under `folder` that a dataset folder would not hold, or None if it looks like a dataset."""
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            relative = os.path.relpath(os.path.join(root, name), folder).replace(os.sep, '/')
            if not _DATASET_ENTRY.fullmatch(relative):
                return relative
    return None


def check_destination(dest, overwrite):
    """Raises DestinationError unless `dest` can be (re)written: new, empty, or overwrite requested."""
    wants_zip = dest.lower().endswith('.zip')
    if wants_zip and os.path.isdir(dest):
        raise DestinationError(f'--dest {dest} is an existing folder; a .zip destination must be a file path')
    if not wants_zip and os.path.isfile(dest):
        raise DestinationError(f'--dest {dest} is an existing file; give a folder path or a path ending in .zip')
    problem = dnnlib.util.output_dir_problem(os.path.dirname(os.path.abspath(dest)) if wants_zip else dest)
    if problem:
        raise DestinationError(f'--dest {dest} cannot be created: {problem}; choose another path')
    if is_nonempty(dest) and not overwrite:
        raise DestinationError(f'--dest {dest} already exists and is not empty; choose another path or pass --overwrite to replace it')
    foreign = first_foreign_file(dest) if overwrite and os.path.isdir(dest) else None
    if foreign:
        raise DestinationError(f'--dest {dest} holds {foreign}, which is not part of a dataset; --overwrite replaces only '
                               f'a dataset folder (dataset.json, 00000/img00000000.png...); choose another path')


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
        try:
            os.makedirs(parent, exist_ok=True)
            if self.is_zip:
                handle = self._stack.enter_context(dnnlib.util.atomic_write(self.dest, 'wb'))
                self._zip = self._stack.enter_context(zipfile.ZipFile(handle, 'w', compression=zipfile.ZIP_STORED))
            else:
                self._temp_dir = self._sibling('tmp')
                os.mkdir(self._temp_dir)  # Not mkdtemp: the finished folder should get the usual permissions.
        except BaseException as exc:
            self.abort()
            raise self._one_line(exc, parent) from None
        return self

    def _one_line(self, exc, path):
        """A full disk or read-only place as WriteError, any other OSError as DestinationError; else `exc` itself."""
        error = dnnlib.util.write_error(exc, path)
        if error is not None:
            return error
        if isinstance(exc, OSError):
            return DestinationError(f'cannot write --dest {self.dest}: {exc.strerror or exc} ({exc.filename or path})')
        return exc

    def _sibling(self, tag):
        # Same folder as dest, so the final rename is atomic; hidden, and unique per run.
        return os.path.join(os.path.dirname(self.dest), f'.{os.path.basename(self.dest)}.{tag}-{os.getpid()}-{secrets.token_hex(4)}')

    def write(self, archive_name, data):
        """Stores bytes (or str, as UTF-8) at a '/'-separated path inside the dataset."""
        if isinstance(data, str):
            data = data.encode('utf-8')
        try:
            if self._zip is not None:
                self._zip.writestr(archive_name, data)
                return
            path = os.path.join(self._temp_dir, *archive_name.split('/'))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with dnnlib.util.atomic_write(path, 'wb') as f:  # Full disk or read-only place: WriteError.
                f.write(data)
        except OSError as exc:
            raise self._one_line(exc, self.dest if self._zip is not None else path) from None

    def commit(self):
        """Finishes the dataset and moves it onto `dest` (replacing what --overwrite allowed)."""
        old = None
        try:
            if self.is_zip:
                self._stack.close()  # Closes the zip, then atomic_write renames the temp file onto dest.
            else:
                old = self._move_folder_into_place()
        except OSError as exc:
            raise self._one_line(exc, self.dest) from None
        self._done = True
        if old is not None:
            shutil.rmtree(old)  # The new dataset is in place; what --overwrite replaced goes last.

    def _move_folder_into_place(self):
        """Renames the finished folder onto dest; returns where the replaced dataset was moved, or None."""
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
        return old

    def abort(self):
        """Removes everything written so far; `dest` is left as it was."""
        if self._done:
            return
        self._done = True
        # Exiting with an exception makes atomic_write delete its temporary file. Closing the zip
        # writes its directory, which fails again on a full disk: the file is discarded either way.
        with contextlib.suppress(_Aborted, OSError):
            self._stack.__exit__(_Aborted, _Aborted('dataset conversion aborted'), None)
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
        for folder in self._created_dirs:
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # Only folders we made, and only while empty.

    def __exit__(self, exc_type, exc_value, traceback):
        self.abort()  # No-op after commit().
        return False
