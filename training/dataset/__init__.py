"""Datasets: reading them for training (image_folder.py), and the sources, transforms and writer behind dataset_tool.py."""

# training_options.json files name the dataset class `training.dataset.ImageFolderDataset`.
from training.dataset.image_folder import Dataset, DatasetError, ImageFolderDataset  # noqa: F401
