"""What a label may be, for dataset_tool.py (as it converts) and the dataset reader (as it loads): one rule.

Labels are all class indices in [0, MAX_CLASSES), or all lists of the same length of finite numbers; the first
label decides which. Anything else (a class of 10**12, which would allocate a one-hot of 8 TB, NaN, booleans,
classes mixed with vectors) is refused naming the first bad entry, so it never reaches training.
"""

import math
import numbers

import numpy as np

MAX_CLASSES = 10 ** 6


class LabelError(ValueError):
    """A label that breaks the rule; the message names the image and the label."""


def _is_class(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 <= value < MAX_CLASSES


def _is_vector(value):
    return isinstance(value, list) and len(value) > 0 and all(
        isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x) for x in value)


class LabelChecker:
    """Checks labels one at a time against the rule and the first label seen; returns each as JSON-ready data."""

    def __init__(self, where):
        self.where = where      # What the labels come from, for messages (a dataset.json, --source).
        self.first = None       # (name, label) of the first label.

    def __call__(self, name, value):
        if self.first is None:
            if not (_is_class(value) or _is_vector(value)):
                raise LabelError(f'{self.where}: the label of {name} is {_short(value)}; accepted: a class index in '
                                 f'[0, {MAX_CLASSES}) or a list of finite numbers')
            self.first = (name, value)
            return self._normalised(value)
        first_name, first = self.first
        if _is_class(first) and not _is_class(value):
            raise LabelError(f'{self.where}: the label of {name} is {_short(value)}, but labels are class indices in '
                             f'[0, {MAX_CLASSES}) (as {first_name}\'s, {first}); every label must be one')
        if _is_vector(first) and not (_is_vector(value) and len(value) == len(first)):
            raise LabelError(f'{self.where}: the label of {name} is {_short(value)}, but labels are lists of '
                             f'{len(first)} finite numbers (as {first_name}\'s); every label must be one')
        return self._normalised(value)

    @staticmethod
    def _normalised(value):
        return int(value) if _is_class(value) else [float(x) for x in value]


def labels_array(names_and_labels, where):
    """int64 [N] classes or float32 [N, D] vectors of [(name, label)] after checking every label."""
    check = LabelChecker(where)
    values = [check(name, value) for name, value in names_and_labels]
    if values and isinstance(values[0], int):
        return np.array(values, dtype=np.int64)
    return np.array(values, dtype=np.float32).reshape([len(values), -1])


def check_class_names(value, where):
    """The optional "class_names" of dataset.json: a list of non-empty strings, entry i naming class i; returned
    as a list of str, or LabelError naming `where`."""
    if not (isinstance(value, list) and 0 < len(value) <= MAX_CLASSES
            and all(isinstance(name, str) and name.strip() for name in value)):
        raise LabelError(f'{where}: "class_names" is {_short(value)}; accepted: a list of non-empty strings, entry i '
                         f'naming class i (or leave it out)')
    return [str(name) for name in value]


def _short(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + '...'
