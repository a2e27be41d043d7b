"""Augmentation: the differentiable ADA pipe (pipe.py, its matrices in matrices.py) and the controller that adapts p (ada.py)."""

# Snapshots and training_options.json name the pipe `training.augment.AugmentPipe`.
from training.augment.pipe import AugmentPipe, augpipe_specs  # noqa: F401
