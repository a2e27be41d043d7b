"""Training datasets: a folder or uncompressed zip of PNG/JPEG images, with optional labels in dataset.json."""

import json
import os
import zipfile

import numpy as np
import PIL.Image
import torch

import dnnlib
from training.dataset.labels import LabelError, check_class_names, labels_array
from training.dataset.sources import IMAGE_EXTENSIONS, describe_decode_error, is_image_file
from training.dataset.transforms import SHAPES_TEXT, network_shape

_CONVERT_HINT = 'convert the images with dataset_tool.py'


class DatasetError(ValueError):
    """A dataset that cannot be used as asked; the message names the file and what is accepted."""

#----------------------------------------------------------------------------

class Dataset(torch.utils.data.Dataset):
    """Index bookkeeping (max_size subset, x-flip doubling) and labels; subclasses load raw images and labels."""

    def __init__(self,
        name,                   # Name of the dataset (its file name without extension).
        raw_shape,              # Shape of the stored images, [N, C, H, W].
        use_labels  = False,    # Return conditioning labels? False = zero-length labels.
        max_size    = None,     # Keep a random subset of at most this many images (applied before xflip); None = all.
        xflip       = False,    # Double the dataset with horizontally mirrored copies (applied after max_size).
        random_seed = 0,        # Seed for choosing the max_size subset.
    ):
        if max_size is not None and (not isinstance(max_size, (int, np.integer)) or max_size < 1):
            raise DatasetError(f'max_size={max_size!r} for dataset {name}; accepted: None or a positive integer')
        self._name = name
        self._raw_shape = list(raw_shape)
        self._use_labels = use_labels

        # Same subset as stylegan2-ada for the same seed: shuffle all indices, keep the first max_size, sorted.
        raw_idx = np.arange(self._raw_shape[0], dtype=np.int64)
        if max_size is not None and raw_idx.size > max_size:
            np.random.RandomState(random_seed).shuffle(raw_idx)
            raw_idx = np.sort(raw_idx[:max_size])
        flips = np.zeros(raw_idx.size, dtype=np.uint8)
        if xflip:
            raw_idx = np.concatenate([raw_idx, raw_idx])
            flips = np.concatenate([flips, np.ones_like(flips)])
        self._raw_idx = raw_idx
        self._xflip = flips

        # Labels are read up front so a bad dataset.json fails at construction, not in a DataLoader worker.
        self._raw_labels = self._load_raw_labels() if use_labels else np.zeros([self._raw_shape[0], 0], dtype=np.float32)
        if self._raw_labels.dtype == np.int64:
            self._label_shape = [int(self._raw_labels.max(initial=-1)) + 1]
        else:
            self._label_shape = list(self._raw_labels.shape[1:])

    def _load_raw_image(self, raw_idx):  # Subclass: CHW uint8 array of stored image `raw_idx`.
        raise NotImplementedError

    def _load_raw_labels(self):  # Subclass: int64 [N] classes or float32 [N, D] vectors.
        raise NotImplementedError

    def close(self):  # Subclass: release open files.
        pass

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __len__(self):
        return self._raw_idx.size

    def __getitem__(self, idx):
        image = self._load_raw_image(int(self._raw_idx[idx]))
        if self._xflip[idx]:
            image = image[:, :, ::-1]
        return image.copy(), self.get_label(idx)

    def get_label(self, idx):
        """float32 label of item `idx`: one-hot for integer classes, the stored vector otherwise."""
        label = self._raw_labels[self._raw_idx[idx]]
        if label.dtype == np.int64:
            onehot = np.zeros(self.label_shape, dtype=np.float32)
            onehot[label] = 1
            return onehot
        return label.copy()

    def get_details(self, idx):
        """Where item `idx` comes from: raw index, whether it is mirrored, and its stored label."""
        raw_idx = int(self._raw_idx[idx])
        return dnnlib.EasyDict(raw_idx=raw_idx, xflip=bool(self._xflip[idx]), raw_label=self._raw_labels[raw_idx].copy())

    @property
    def name(self):
        return self._name

    @property
    def image_shape(self):
        return list(self._raw_shape[1:])

    @property
    def num_channels(self):
        return self.image_shape[0]

    @property
    def resolution(self):
        """The side of square images; for non-square ones the networks' nominal resolution (transforms.network_shape)."""
        shape = network_shape(*self.image_shape[1:])
        return self.image_shape[1] if shape is None else shape[0]

    @property
    def init_res(self):
        """(h0, w0) of the networks' first block for non-square images, None for square ones."""
        shape = network_shape(*self.image_shape[1:])
        return None if shape is None else shape[1]

    @property
    def label_shape(self):
        return list(self._label_shape)

    @property
    def label_dim(self):
        return self._label_shape[0]

    @property
    def has_labels(self):
        return any(x != 0 for x in self._label_shape)

    @property
    def has_onehot_labels(self):
        return self._raw_labels.dtype == np.int64

#----------------------------------------------------------------------------

def _check_mode(image, where):
    if image.mode not in ('L', 'RGB'):
        bands = len(image.getbands())
        raise DatasetError(f'{where} has {bands} channel(s) (mode {image.mode}); accepted: 1 (grayscale) or 3 (RGB); {_CONVERT_HINT}')


def _check_shape(shape, expected_shape, where):
    if expected_shape is not None and list(shape) != list(expected_shape):
        raise DatasetError(f'{where} has shape {list(shape)} (CHW) but the dataset\'s images are {list(expected_shape)}; '
                           f'all images must share one size and channel count; {_CONVERT_HINT}')


class ImageFolderDataset(Dataset):
    """Images in a folder tree or uncompressed zip (as dataset_tool.py writes them), sorted by path."""

    def __init__(self,
        path,                   # Folder or .zip holding the images and an optional dataset.json.
        resolution  = None,     # Required image size; None = whatever size the images have.
        use_labels  = False,    # Read labels from dataset.json (required to exist and cover every image).
        max_size    = None,     # Keep a random subset of at most this many images; None = all.
        xflip       = False,    # Double the dataset with horizontally mirrored copies.
        random_seed = 0,        # Seed for choosing the max_size subset.
    ):
        self._path = path
        self._zipfile = None    # Opened lazily, once per process (DataLoader workers each get their own).
        self._zip_pid = None
        if os.path.isdir(path):
            self._type = 'dir'
            names = [os.path.relpath(os.path.join(root, f), path).replace(os.sep, '/') for root, _dirs, files in os.walk(path) for f in files]
        elif os.path.isfile(path) and path.lower().endswith('.zip'):
            self._type = 'zip'
            try:
                names = [n for n in self._get_zipfile().namelist() if not n.endswith('/')]
            except (zipfile.BadZipFile, OSError) as exc:
                raise DatasetError(f'dataset {path} is not a readable zip archive ({exc})') from None
        else:
            raise DatasetError(f'dataset path {path} is not a folder or a .zip file; accepted: what dataset_tool.py writes')
        self._all_names = set(names)
        self._image_names = sorted(n for n in names if is_image_file(n))
        if not self._image_names:
            raise DatasetError(f'dataset {path} holds no images (accepted extensions: {" ".join(IMAGE_EXTENSIONS)})')

        channels, height, width = self._load_raw_image(0, expected_shape=None).shape
        first = f'{path}:{self._image_names[0]}'
        if network_shape(height, width) is None:
            raise DatasetError(f'{first} is {width}x{height}; images must be {SHAPES_TEXT}; {_CONVERT_HINT} --width/--height')
        if resolution is not None and network_shape(height, width)[0] != resolution:
            raise DatasetError(f'{first} is {width}x{height} but resolution={resolution} was requested; {_CONVERT_HINT} --width={resolution}')
        raw_shape = [len(self._image_names), channels, height, width]
        name = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
        super().__init__(name=name, raw_shape=raw_shape, use_labels=use_labels, max_size=max_size, xflip=xflip, random_seed=random_seed)
        # Checked now, so a bad list fails here and not at a run's first snapshot; only labelled datasets name classes.
        self._class_names = self._load_class_names() if use_labels else None

    def _get_zipfile(self):
        if self._zipfile is None or self._zip_pid != os.getpid():
            self._zipfile = zipfile.ZipFile(self._path)
            self._zip_pid = os.getpid()
        return self._zipfile

    def _open(self, name):
        if self._type == 'zip':
            return self._get_zipfile().open(name, 'r')
        return open(os.path.join(self._path, *name.split('/')), 'rb')

    def close(self):
        if self._zipfile is not None and self._zip_pid == os.getpid():
            self._zipfile.close()
        self._zipfile = None
        self._zip_pid = None

    def __getstate__(self):
        return dict(self.__dict__, _zipfile=None, _zip_pid=None)

    def _load_raw_image(self, raw_idx, expected_shape=()):
        name = self._image_names[raw_idx]
        where = f'{self._path}:{name}'
        try:
            with self._open(name) as f:
                image = PIL.Image.open(f)
                _check_mode(image, where)
                pixels = np.asarray(image)  # Decodes here.
        except DatasetError:
            raise
        except Exception as exc:  # Pillow signals bad data with many types (OSError, SyntaxError, ...).
            raise DatasetError(f'cannot decode image {where}: {describe_decode_error(exc)}') from None
        pixels = pixels[np.newaxis] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)  # HW(C) -> CHW
        if expected_shape == ():
            expected_shape = self.image_shape
        _check_shape(list(pixels.shape), expected_shape, where)
        return pixels

    def check_images(self):
        """Read the header of every stored image (not its pixels): DatasetError naming the first that cannot be
        opened or differs in size or channel count. Returns how many were checked.

        Cheap enough to run before training (headers only); image data that is corrupt past its header is
        found when the image is first loaded, and reported with its name then.
        """
        for name in self._image_names:
            where = f'{self._path}:{name}'
            try:
                with self._open(name) as f:
                    image = PIL.Image.open(f)
                    _check_mode(image, where)
                    width, height = image.size
            except DatasetError:
                raise
            except Exception as exc:  # pylint: disable=broad-except
                raise DatasetError(f'cannot read image {where}: {describe_decode_error(exc)}') from None
            _check_shape([len(image.getbands()), height, width], self.image_shape, where)
        return len(self._image_names)

    def _read_dataset_json(self):
        """dataset.json as a dict, or None when the file is missing."""
        if 'dataset.json' not in self._all_names:
            return None
        try:
            with self._open('dataset.json') as f:
                content = json.load(f)
            if 'labels' not in content:  # Required, even when null.
                raise KeyError('labels')
            return content
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f'{self._path}:dataset.json is not valid (expected {{"labels": [[path, label], ...]}}): {exc}') from None

    def _read_label_list(self):
        """The "labels" list of dataset.json, or None when the file is missing or says null."""
        content = self._read_dataset_json()
        return None if content is None else content['labels']

    @property
    def class_names(self):
        """dataset.json's optional "class_names" (entry i names class i), or None (always without use_labels)."""
        return self._class_names

    def _load_class_names(self):
        """The "class_names" of dataset.json, checked to name every class of class-index labels in use."""
        content = self._read_dataset_json()
        if content is None or content.get('class_names') is None:
            return None
        where = f'{self._path}:dataset.json'
        try:
            names = check_class_names(content['class_names'], where)
        except LabelError as exc:
            raise DatasetError(str(exc)) from None
        if self.has_onehot_labels and len(names) < self.label_dim:
            raise DatasetError(f'{where}: "class_names" names {len(names)} classes, but the labels use {self.label_dim}; '
                               f'name every class or leave "class_names" out')
        return names

    @property
    def labels_available(self):
        """Whether dataset.json provides labels, whatever use_labels says (for deciding on conditioning)."""
        return self._read_label_list() is not None

    def _load_raw_labels(self):
        where = f'{self._path}:dataset.json'
        labels = self._read_label_list()
        if labels is None:
            state = 'is missing' if 'dataset.json' not in self._all_names else 'has "labels": null'
            raise DatasetError(f'labels requested but {where} {state}; build the dataset from a labelled source with dataset_tool.py, or train unconditionally')
        try:
            by_name = {str(n).replace('\\', '/'): value for n, value in labels}
        except (TypeError, ValueError):
            raise DatasetError(f'{where}: "labels" must be a list of [relative_path, label] pairs') from None
        missing = [n for n in self._image_names if n not in by_name]
        if missing:
            raise DatasetError(f'{where} has no label for {len(missing)} of {len(self._image_names)} images (first: {missing[0]}); every image needs a label')
        images = set(self._image_names)
        strays = sorted(n for n in by_name if n not in images)
        if strays:
            raise DatasetError(f'{where} labels {len(strays)} file(s) that are not images of the dataset (first: {strays[0]}); '
                               f'it must label exactly the images present, as dataset_tool.py writes it')
        try:
            return labels_array([(n, by_name[n]) for n in self._image_names], where)
        except LabelError as exc:
            raise DatasetError(str(exc)) from None
