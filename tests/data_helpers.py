"""Fixture builders for the dataset tests: tiny sources in the real on-disk formats, and a CLI runner."""

import gzip
import io
import json
import os
import pickle
import struct
import tarfile
import zipfile
import zlib

import numpy as np
import PIL.Image
from click.testing import CliRunner

import dataset_tool

#----------------------------------------------------------------------------
# Images.

def pattern(height, width, channels, seed):
    """A deterministic image with structure in both axes (so flips and crops are visible)."""
    rng = np.random.RandomState(seed)
    image = rng.randint(0, 256, size=[height, width, channels]).astype(np.uint8)
    image[:, : width // 4] = 255 - seed % 200  # A bright left band: mirrored copies differ.
    return image[..., 0] if channels == 1 else image


def save_image(path, pixels, fmt='PNG', mode=None):
    """Writes an HW or HWC uint8 array; returns the path."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = PIL.Image.fromarray(pixels)
    if mode is not None:
        image = image.convert(mode)
    image.save(path, format=fmt, **({'quality': 95} if fmt == 'JPEG' else {}))
    return path


def save_png_16bit_rgb(path, pixels):
    """Writes an HxWx3 uint16 array as a 48-bit PNG (Pillow cannot save those); returns the path."""
    height, width, _channels = pixels.shape
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    rows = b''.join(b'\0' + row.astype('>u2').tobytes() for row in pixels)  # Filter byte 0 per row.
    header = struct.pack('>IIBBBBB', width, height, 16, 2, 0, 0, 0)      # 16 bits per sample, colour type RGB.
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))
    return path


def write_dataset_json(folder, labels):
    with open(os.path.join(folder, 'dataset.json'), 'w', encoding='utf-8') as f:
        json.dump({'labels': labels}, f)


def make_image_folder(folder, count, size=8, channels=3, labels=None):
    """`count` PNGs named img{i}.png (labels: list or None -> dataset.json); returns the pixel arrays."""
    os.makedirs(folder, exist_ok=True)
    images = [pattern(size, size, channels, seed=i) for i in range(count)]
    for i, pixels in enumerate(images):
        save_image(os.path.join(folder, f'img{i}.png'), pixels)
    if labels is not None:
        write_dataset_json(folder, [[f'img{i}.png', label] for i, label in enumerate(labels)])
    return images


def zip_folder(folder, zip_path):
    with zipfile.ZipFile(zip_path, 'w', compression=zipfile.ZIP_STORED) as z:
        for root, _dirs, files in os.walk(folder):
            for f in sorted(files):
                full = os.path.join(root, f)
                z.write(full, os.path.relpath(full, folder).replace(os.sep, '/'))
    return zip_path


def read_png_tree(root):
    """{relative_path: HWC/HW array} of every PNG in a dataset folder or zip."""
    if root.endswith('.zip'):
        with zipfile.ZipFile(root) as z:
            return {n: np.asarray(PIL.Image.open(io.BytesIO(z.read(n)))) for n in z.namelist() if n.endswith('.png')}
    found = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            if f.endswith('.png'):
                full = os.path.join(dirpath, f)
                found[os.path.relpath(full, root).replace(os.sep, '/')] = np.asarray(PIL.Image.open(full))
    return found


def read_labels(root):
    if root.endswith('.zip'):
        with zipfile.ZipFile(root) as z:
            return json.loads(z.read('dataset.json'))['labels']
    with open(os.path.join(root, 'dataset.json'), encoding='utf-8') as f:
        return json.load(f)['labels']

#----------------------------------------------------------------------------
# CIFAR-10 python tarball.

class Python2StylePickler(pickle._Pickler):
    """Pickles bytes the way Python 2 pickled str (SHORT_BINSTRING/BINSTRING), as in the real CIFAR-10 files."""
    dispatch = dict(pickle._Pickler.dispatch)

    def save_python2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack('<i', len(obj)) + obj)
        self.memoize(obj)
    dispatch[bytes] = save_python2_str


def pickle_cifar_batch(batch, python2=True):
    """Protocol 2 with bytes keys. python2=True: Python 2 opcodes and numpy 1 module names (keys load as str)."""
    if not python2:
        return pickle.dumps(batch, protocol=2)
    buffer = io.BytesIO()
    Python2StylePickler(buffer, protocol=2).dump(batch)
    return buffer.getvalue().replace(b'numpy._core.multiarray', b'numpy.core.multiarray')


CIFAR10_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']


def make_cifar_tarball(path, num_batches=2, per_batch=3, side=8, python2=True):
    """A cifar-10-python.tar.gz layout; returns (NHWC images, labels) in file order."""
    rng = np.random.RandomState(1)
    members, all_images, all_labels = {}, [], []
    for b in range(1, num_batches + 1):
        images = rng.randint(0, 256, size=[per_batch, 3, side, side]).astype(np.uint8)  # Planar RGB.
        labels = [int(x) for x in rng.randint(0, 10, size=per_batch)]
        batch = {b'batch_label': f'training batch {b} of {num_batches}'.encode(), b'labels': labels,
                 b'data': images.reshape(per_batch, -1), b'filenames': [f'f{b}_{i}.png'.encode() for i in range(per_batch)]}
        members[f'cifar-10-batches-py/data_batch_{b}'] = pickle_cifar_batch(batch, python2)
        all_images.append(images.transpose(0, 2, 3, 1))
        all_labels += labels
    test = {b'data': np.zeros([1, 3 * side * side], np.uint8), b'labels': [0]}  # Must be ignored.
    members['cifar-10-batches-py/test_batch'] = pickle_cifar_batch(test, python2)
    members['cifar-10-batches-py/batches.meta'] = pickle_cifar_batch({b'label_names': [name.encode() for name in CIFAR10_NAMES]}, python2)
    with tarfile.open(path, 'w:gz') as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return np.concatenate(all_images), all_labels

#----------------------------------------------------------------------------
# MNIST idx files.

def idx_bytes(array):
    header = bytes([0, 0, 0x08, array.ndim]) + b''.join(struct.pack('>I', d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def make_mnist(folder, count=5, side=28, gz=True, prefix='train'):
    """train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]; returns (NHW images, labels)."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.RandomState(2)
    images = rng.randint(0, 256, size=[count, side, side]).astype(np.uint8)
    labels = rng.randint(0, 10, size=count).astype(np.uint8)
    for kind, array in (('images-idx3', images), ('labels-idx1', labels)):
        path = os.path.join(folder, f'{prefix}-{kind}-ubyte' + ('.gz' if gz else ''))
        data = idx_bytes(array)
        with open(path, 'wb') as f:
            f.write(gzip.compress(data) if gz else data)
    return images, [int(x) for x in labels]

#----------------------------------------------------------------------------
# Running the tool.

def run_tool(*args):
    """Runs dataset_tool.py in-process; returns the click Result (output holds stdout and stderr)."""
    return CliRunner().invoke(dataset_tool.main, [str(a) for a in args])


def assert_clean_failure(result, *fragments):
    """Non-zero exit, one 'Error:' line containing every fragment, and no traceback."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # An uncaught one would be the exception.
    errors = [line for line in result.output.splitlines() if line.startswith('Error:')]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def listing(folder):
    """Every path under `folder` (recursively), to prove nothing was left behind or changed."""
    return sorted(os.path.relpath(os.path.join(root, f), folder)
                  for root, dirs, files in os.walk(folder) for f in files + dirs)
