"""Readers for the image sources dataset_tool.py converts: folders, zips, CIFAR-10, MNIST, LSUN, builtin sets."""

import gzip
import importlib
import io
import json
import os
import pickle
import re
import tarfile
import zipfile

import numpy as np
import PIL.Image

from training.dataset.labels import LabelError, check_class_names
from training.dataset.transforms import SIXTEEN_BIT_KEY, channels_of

# Extensions read as images, by folders, zips and training.dataset alike. A fixed list keeps
# behaviour the same across Pillow versions (Pillow also registers save-only formats such as .pdf).
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.tif', '.tiff', '.webp', '.ppm', '.pgm', '.pbm')

BUILTIN_NAMES = ('digits',)

#----------------------------------------------------------------------------

class SourceError(Exception):
    """The source as a whole cannot be read (missing, wrong format, broken archive)."""


class BadImageError(Exception):
    """One image cannot be read; `name` says which, the message says why."""
    def __init__(self, name, reason):
        super().__init__(f'{name}: {reason}')
        self.name = name
        self.reason = reason


class SourceItem:
    """One image of a source: a name for messages, a loader returning a decoded PIL image, a label."""
    def __init__(self,
        name,           # Where the image comes from, for messages ('photos/cat.png', 'data_batch_1[17]').
        load,           # Callable returning a fully decoded PIL.Image; raises BadImageError.
        label = None,   # int class, list of floats, or None.
    ):
        self.name = name
        self.load = load
        self.label = label

#----------------------------------------------------------------------------
# Decoding.

def is_image_file(fname):
    return os.path.splitext(fname)[1].lower() in IMAGE_EXTENSIONS


def decode_image(data, name):
    """Fully decodes an encoded image held in bytes; any failure becomes BadImageError."""
    try:
        image = PIL.Image.open(io.BytesIO(data))
        sixteen_bit = any(';16' in str(tile.args) for tile in image.tile)  # E.g. 'RGB;16B'; load() forgets it.
        image.load()  # Decode now so truncated data fails here, with the file's name.
    except Exception as exc:  # Pillow raises many types for bad data (OSError, SyntaxError, ValueError...).
        raise BadImageError(name, describe_decode_error(exc)) from None
    if sixteen_bit:
        image.info[SIXTEEN_BIT_KEY] = True  # Pillow decodes 16-bit RGB(A) to its high bytes; the summary says so.
    return image


def describe_decode_error(exc):
    if isinstance(exc, PIL.UnidentifiedImageError):  # Its text names a BytesIO object, not the file.
        return 'not a readable image (unknown format or corrupt header)'
    return f'corrupt image data ({type(exc).__name__}: {exc})'


def peek_channels(open_file):
    """Reads only the header of an image and returns its channel count (1-4), or None if unreadable or unsupported."""
    try:
        with open_file() as f:
            image = PIL.Image.open(f)
            return channels_of(image.mode, image.info)
    except Exception:
        return None  # The full decode later reports the problem, with its name.


def count_channels(names, channels_of_name):
    """{channels: [number of images, first image name]} over `names`, in order; unreadable images are left out."""
    census = {}
    for name in names:
        channels = channels_of_name(name)
        if channels is not None:
            census.setdefault(channels, [0, name])[0] += 1
    return census

#----------------------------------------------------------------------------
# Labels from a dataset.json next to the images.

def parse_label_file(data, where):
    """Parses dataset.json bytes into {relative_path: label}, or None if it declares no labels."""
    try:
        labels = json.loads(data)['labels']
    except (ValueError, KeyError, TypeError) as exc:
        raise SourceError(f'{where} is not a valid dataset.json (expected {{"labels": [[path, label], ...]}}): {exc}') from None
    if labels is None:
        return None
    if not isinstance(labels, list) or not all(isinstance(x, list) and len(x) == 2 for x in labels):
        raise SourceError(f'{where}: "labels" must be a list of [relative_path, label] pairs or null')
    return {str(path).replace('\\', '/'): label for path, label in labels}


def parse_class_names(data, labels, where):
    """dataset.json bytes' optional "class_names" (entry i names class i), or None; when `labels` ({path: label})
    are class indices, the names must cover every one."""
    try:
        value = json.loads(data).get('class_names')
        names = None if value is None else check_class_names(value, where)
    except (ValueError, AttributeError) as exc:  # LabelError is a ValueError.
        raise SourceError(str(exc) if isinstance(exc, LabelError) else f'{where} is not a valid dataset.json: {exc}') from None
    classes = [label for label in (labels or {}).values() if isinstance(label, int) and not isinstance(label, bool)]
    if names is not None and classes and max(classes) >= len(names):
        raise SourceError(f'{where}: "class_names" names {len(names)} classes, but the labels use class {max(classes)}; '
                          f'name every class or leave "class_names" out')
    return names


DIGIT_NAMES = [str(digit) for digit in range(10)]


def check_label_coverage(labels, names, where, source):
    """Raises SourceError unless dataset.json labels exactly the images found (`names`: sorted relative paths)."""
    if labels is None:
        return
    found = set(names)
    missing = sorted(path for path in labels if path not in found)
    unlabelled = [name for name in names if name not in labels]
    problems = []
    if missing:
        problems.append(f'labels {len(missing)} files that are not images in --source {source} (first: {missing[0]})')
    if unlabelled:
        problems.append(f'{len(unlabelled)} of {len(names)} images have no label (first: {unlabelled[0]})')
    if problems:
        raise SourceError(f'{where} ' + '; '.join(problems) + '; make it label every image once, or remove it to convert without labels')

#----------------------------------------------------------------------------
# Image folders and zips.

class ImageFolderSource:
    """All images under a folder, recursively, sorted by relative path; labels from its dataset.json."""
    description = 'image folder'

    def __init__(self, path):
        self.path = path
        names = []
        for root, _dirs, files in os.walk(path):
            names += [os.path.relpath(os.path.join(root, f), path).replace(os.sep, '/') for f in files if is_image_file(f)]
        self.names = sorted(names)
        self.labels = self.class_names = None
        label_path = os.path.join(path, 'dataset.json')
        if os.path.isfile(label_path):
            with open(label_path, 'rb') as f:
                label_text = f.read()
            self.labels = parse_label_file(label_text, label_path)
            self.class_names = parse_class_names(label_text, self.labels, label_path)
            check_label_coverage(self.labels, self.names, label_path, path)

    def _open(self, name):
        return open(os.path.join(self.path, name), 'rb')

    def __len__(self):
        return len(self.names)

    def close(self):
        pass

    def channel_census(self, limit=None):
        """{channels: [count, first image]} from the image headers (the first `limit` images)."""
        census = count_channels(self.names[:limit], lambda name: peek_channels(lambda: self._open(name)))
        return {channels: [count, self._where(first)] for channels, (count, first) in census.items()}

    def __iter__(self):
        for name in self.names:
            label = None if self.labels is None else self.labels.get(name)
            yield SourceItem(self._where(name), self._loader(name), label)

    def _where(self, name):
        return os.path.join(self.path, name)

    def _loader(self, name):
        def load():
            try:
                with self._open(name) as f:
                    data = f.read()
            except (OSError, EOFError, zipfile.BadZipFile) as exc:  # Zips also raise these on CRC mismatches.
                raise BadImageError(self._where(name), f'cannot read file ({exc})') from None
            return decode_image(data, self._where(name))
        return load


class ImageZipSource(ImageFolderSource):
    """All images inside a zip archive, sorted by member name; labels from its dataset.json member."""
    description = 'image zip'

    def __init__(self, path):
        self.path = path
        self._zip = None
        try:
            with zipfile.ZipFile(path) as z:
                members = z.namelist()
                label_text = z.read('dataset.json') if 'dataset.json' in members else None
        except (zipfile.BadZipFile, OSError) as exc:
            raise SourceError(f'--source {path} is not a readable zip archive ({exc})') from None
        self.names = sorted(m for m in members if not m.endswith('/') and is_image_file(m))
        self.labels = None if label_text is None else parse_label_file(label_text, f'{path}:dataset.json')
        self.class_names = None if label_text is None else parse_class_names(label_text, self.labels, f'{path}:dataset.json')
        check_label_coverage(self.labels, self.names, f'{path}:dataset.json', path)

    def _open(self, name):
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.path)
        return self._zip.open(name)

    def close(self):
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def _where(self, name):
        return f'{self.path}:{name}'

#----------------------------------------------------------------------------
# Image arrays already in memory (CIFAR-10, MNIST, builtin sets).

class ArraySource:
    """Images held as an NHWC or NHW uint8 array, with optional integer labels."""
    def __init__(self,
        description,    # What the source is, for the summary ('CIFAR-10 tarball').
        images,         # uint8 array, [N, H, W, 3] or [N, H, W].
        labels,         # int array [N], or None.
        names,          # Callable idx -> name for messages.
        class_names = None, # Names of the classes (entry i names class i), or None.
    ):
        self.description = description
        self.images = images
        self.labels = labels
        self.class_names = class_names
        self._names = names

    def __len__(self):
        return len(self.images)

    def close(self):
        pass

    def channel_census(self, limit=None):
        count = len(self.images) if limit is None else min(limit, len(self.images))
        return {3 if self.images.ndim == 4 else 1: [count, self._names(0)]}

    def __iter__(self):
        for idx, pixels in enumerate(self.images):
            label = None if self.labels is None else int(self.labels[idx])
            yield SourceItem(self._names(idx), lambda pixels=pixels: PIL.Image.fromarray(pixels), label)

#----------------------------------------------------------------------------
# CIFAR-10 python tarball.

def _numpy_multiarray_module():
    try:
        importlib.import_module('numpy._core.multiarray')  # numpy >= 2 (and late 1.26).
        return 'numpy._core.multiarray'
    except ImportError:
        return 'numpy.core.multiarray'


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only plain containers and numpy arrays, so a tarball cannot run code."""
    _ALLOWED = {('numpy', 'ndarray'), ('numpy', 'dtype'), ('_codecs', 'encode'),
                ('multiarray', '_reconstruct'), ('multiarray', 'scalar')}

    def find_class(self, module, name):
        is_multiarray = module in ('numpy.core.multiarray', 'numpy._core.multiarray')  # numpy 1 / numpy 2 spelling.
        if (('multiarray' if is_multiarray else module), name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f'refusing to load {module}.{name}')
        return super().find_class(_numpy_multiarray_module() if is_multiarray else module, name)


def _batch_field(batch, key):
    for k in (key, key.encode('ascii')):
        if k in batch:
            return batch[k]
    raise KeyError(key)


def _cifar10_class_names(tar, member, where):
    """The label_names of the tarball's batches.meta (airplane, automobile, ...)."""
    try:
        meta = _ArrayUnpickler(tar.extractfile(member), encoding='latin1').load()
        names = [name.decode('utf-8') if isinstance(name, bytes) else name for name in _batch_field(meta, 'label_names')]
        return check_class_names(names, where)
    except Exception as exc:  # pylint: disable=broad-except  # Whatever the file holds, it is one line.
        raise SourceError(f'{where} is not a CIFAR-10 batches.meta (a pickled dict with label_names): {exc}') from None


def read_cifar10(path):
    """Reads every data_batch_N pickle of a CIFAR-10 python tarball, in N order; sizes come from the data."""
    try:
        tar = tarfile.open(path, 'r:*')
    except (tarfile.TarError, OSError) as exc:
        raise SourceError(f'--source {path} is not a readable tar archive ({exc})') from None
    images, labels = [], []
    class_names = None
    with tar:
        batches = []
        for member in tar.getmembers():
            match = re.fullmatch(r'(?:.*/)?data_batch_(\d+)', member.name)
            if match and member.isfile():
                batches.append((int(match.group(1)), member))
            if re.fullmatch(r'(?:.*/)?batches\.meta', member.name) and member.isfile():
                class_names = _cifar10_class_names(tar, member, f'{path}:{member.name}')
        if not batches:
            raise SourceError(f'--source {path} has no data_batch_N members; accepted: the CIFAR-10 python tarball (cifar-10-python.tar.gz)')
        for _number, member in sorted(batches, key=lambda b: b[0]):
            where = f'{path}:{member.name}'
            try:
                batch = _ArrayUnpickler(tar.extractfile(member), encoding='latin1').load()
                data = np.asarray(_batch_field(batch, 'data'))
                batch_labels = np.asarray(_batch_field(batch, 'labels'), dtype=np.int64)
            except Exception as exc:
                raise SourceError(f'{where} is not a CIFAR-10 batch (a pickled dict with data and labels): {exc}') from None
            side = int(round(np.sqrt(data.shape[-1] / 3))) if data.ndim == 2 else 0
            if data.dtype != np.uint8 or side == 0 or data.shape[1] != 3 * side * side or len(batch_labels) != len(data):
                raise SourceError(f'{where}: expected uint8 data of shape [N, 3*S*S] and N labels, got {data.dtype} {list(data.shape)} and {len(batch_labels)} labels')
            images.append(data.reshape(-1, 3, side, side).transpose(0, 2, 3, 1))  # Rows are planar R, G, B.
            labels.append(batch_labels)
    if len({img.shape[1:] for img in images}) != 1:
        raise SourceError(f'{path}: the data batches hold images of different sizes')
    offsets = np.cumsum([0] + [len(x) for x in labels])
    members = [m.name for _n, m in sorted(batches, key=lambda b: b[0])]
    def name_of(idx):
        b = int(np.searchsorted(offsets, idx, side='right')) - 1
        return f'{members[b]}[{idx - offsets[b]}]'
    return ArraySource('CIFAR-10 tarball', np.concatenate(images), np.concatenate(labels), name_of, class_names)

#----------------------------------------------------------------------------
# MNIST idx files.

_MNIST_IMAGES = re.compile(r'(.*)images([-.])idx3-ubyte(\.gz)?')


def _read_idx(path, ndim):
    """Reads an idx file of uint8 values (gzipped or not) into an array with the dims its header gives."""
    try:
        with open(path, 'rb') as f:
            raw = f.read()
        if raw[:2] == b'\x1f\x8b':
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise SourceError(f'{path}: cannot read idx file ({exc})') from None
    if len(raw) < 4 + 4 * ndim or raw[:4] != bytes([0, 0, 0x08, ndim]):
        raise SourceError(f'{path} is not an idx file of uint8 with {ndim} dims (header {raw[:4].hex()}, expected 000008{ndim:02x})')
    dims = [int(d) for d in np.frombuffer(raw, '>u4', count=ndim, offset=4)]
    count = int(np.prod(dims))
    if len(raw) < 4 + 4 * ndim + count:
        raise SourceError(f'{path} is truncated: its header promises {dims} values')
    return np.frombuffer(raw, np.uint8, count=count, offset=4 + 4 * ndim).reshape(dims)


def find_mnist_images(folder):
    """The images idx file in a folder (train split preferred), or None."""
    found = sorted(f for f in os.listdir(folder) if _MNIST_IMAGES.fullmatch(f) and os.path.isfile(os.path.join(folder, f)))
    train = [f for f in found if f.startswith('train')]
    return os.path.join(folder, (train or found)[0]) if found else None


def read_mnist(images_path):
    """Reads an MNIST images idx file and its labels file next to it; pads images to a power of two (28 -> 32)."""
    images = _read_idx(images_path, 3)
    match = _MNIST_IMAGES.fullmatch(os.path.basename(images_path))
    labels = None
    if match:
        stem = os.path.join(os.path.dirname(images_path), f'{match.group(1)}labels{match.group(2)}idx1-ubyte')
        for candidate in (stem + (match.group(3) or ''), stem, stem + '.gz'):
            if os.path.isfile(candidate):
                labels = _read_idx(candidate, 1)
                if len(labels) != len(images):
                    raise SourceError(f'{candidate} holds {len(labels)} labels but {images_path} holds {len(images)} images')
                break
    height, width = images.shape[1:]
    side = 1 << int(np.ceil(np.log2(max(height, width, 1))))
    top, left = (side - height) // 2, (side - width) // 2
    images = np.pad(images, [(0, 0), (top, side - height - top), (left, side - width - left)])
    name = os.path.basename(images_path)
    return ArraySource('MNIST idx files', images, labels, lambda idx: f'{name}[{idx}]',
                       class_names=None if labels is None else DIGIT_NAMES)

#----------------------------------------------------------------------------
# LSUN lmdb folders.

class LmdbSource:
    """Encoded images stored as the values of an LMDB database (the LSUN scene and object sets)."""
    description = 'LSUN lmdb folder'

    def __init__(self, path):
        try:
            import lmdb  # Optional: only LSUN needs it.
        except ImportError:
            raise SourceError(f'--source {path} is an LMDB folder (LSUN); reading it needs the lmdb package: pip install lmdb') from None
        self.path = path
        try:
            self._env = lmdb.open(path, readonly=True, lock=False, readahead=False)
            with self._env.begin(write=False) as txn:
                self._count = int(txn.stat()['entries'])
        except lmdb.Error as exc:
            raise SourceError(f'--source {path} is not a readable LMDB database ({exc})') from None
        self.labels = self.class_names = None

    def __len__(self):
        return self._count

    def close(self):
        self._env.close()

    def channel_census(self, limit=None):
        return None  # Not read: it would mean reading the whole database; LSUN photos are RGB.

    def __iter__(self):
        with self._env.begin(write=False) as txn:
            for key, value in txn.cursor():
                name = f'{self.path}:{bytes(key).decode("utf-8", "replace")}'
                yield SourceItem(name, lambda value=bytes(value), name=name: decode_image(value, name))

#----------------------------------------------------------------------------
# Builtin datasets shipped inside installed packages (no download).

def read_builtin(name):
    """builtin:digits: scikit-learn's 1,797 labelled 8x8 handwritten digits, upscaled to 32x32 RGB."""
    if name not in BUILTIN_NAMES:
        raise SourceError(f'--source builtin:{name} is unknown; accepted: ' + ', '.join(f'builtin:{n}' for n in BUILTIN_NAMES))
    try:
        from sklearn.datasets import load_digits  # Ships the digits in the wheel: works offline.
    except ImportError:
        raise SourceError('--source builtin:digits needs scikit-learn, which ships the digits: pip install scikit-learn') from None
    digits = load_digits()
    gray = np.clip(np.round(digits.images * (255 / 16)), 0, 255).astype(np.uint8)  # Values are 0..16.
    upscaled = np.stack([np.asarray(PIL.Image.fromarray(g).resize((32, 32), PIL.Image.BICUBIC)) for g in gray])
    rgb = np.repeat(upscaled[..., np.newaxis], 3, axis=3)
    return ArraySource('builtin scikit-learn digits', rgb, digits.target.astype(np.int64), lambda idx: f'digits[{idx}]',
                       class_names=DIGIT_NAMES)

#----------------------------------------------------------------------------

SOURCE_HELP = ('a folder of images, a .zip of images, the CIFAR-10 python tarball, MNIST *-images-idx3-ubyte[.gz] '
               '(or a folder holding them), an LSUN lmdb folder, or builtin:digits')


def open_source(spec):
    """Recognises a --source value by its content and returns a reader for it; raises SourceError."""
    if spec.startswith('builtin:'):
        return read_builtin(spec[len('builtin:'):])
    if not os.path.exists(spec):
        raise SourceError(f'--source {spec} does not exist; accepted: {SOURCE_HELP}')
    if os.path.isdir(spec):
        if os.path.isfile(os.path.join(spec, 'data.mdb')):
            return LmdbSource(spec)
        mnist = find_mnist_images(spec)
        return read_mnist(mnist) if mnist else ImageFolderSource(spec)
    base = os.path.basename(spec).lower()
    if base.endswith('.zip'):
        return ImageZipSource(spec)
    if _MNIST_IMAGES.fullmatch(base):
        return read_mnist(spec)
    if tarfile.is_tarfile(spec):
        return read_cifar10(spec)
    raise SourceError(f'--source {spec} is not a recognised file; accepted: {SOURCE_HELP}')
