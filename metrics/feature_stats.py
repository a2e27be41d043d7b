"""Accumulated detector features (all rows and/or running mean and covariance) and their on-disk form."""

import sys

import numpy as np

import dnnlib


class FeatureStats:
    """Feature rows appended batch by batch, up to `max_items`; keeps all rows and/or float64 moment sums."""

    def __init__(self,
        capture_all      = False,   # Keep every feature row (KID, precision/recall, IS)?
        capture_mean_cov = False,   # Keep running sums for the mean and covariance (FID)?
        max_items        = None,    # Stop accepting rows after this many; None = unlimited.
    ):
        self.capture_all = capture_all
        self.capture_mean_cov = capture_mean_cov
        self.max_items = max_items
        self.num_items = 0
        self.num_features = None
        self._rows = []
        self._sum = None
        self._sum_outer = None

    def is_full(self):
        return self.max_items is not None and self.num_items >= self.max_items

    def append(self, features):
        """Add a [N, F] batch; rows beyond max_items are dropped."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2:
            raise ValueError(f'features must be [N, F], got shape {list(features.shape)}')
        if self.max_items is not None:
            features = features[:max(self.max_items - self.num_items, 0)]
        if self.num_features is None:
            self.num_features = features.shape[1]
            self._sum = np.zeros([self.num_features], dtype=np.float64)
            self._sum_outer = np.zeros([self.num_features, self.num_features], dtype=np.float64)
        elif features.shape[1] != self.num_features:
            raise ValueError(f'features have {features.shape[1]} columns, earlier batches had {self.num_features}')
        if features.shape[0] == 0:
            return
        self.num_items += features.shape[0]
        if self.capture_all:
            self._rows.append(features)
        if self.capture_mean_cov:
            features64 = features.astype(np.float64)
            self._sum += features64.sum(axis=0)
            self._sum_outer += features64.T @ features64

    def get_all(self):
        """[num_items, F] float32 array of every row."""
        assert self.capture_all, 'FeatureStats was created without capture_all'
        if not self._rows:
            return np.zeros([0, self.num_features or 0], dtype=np.float32)
        if len(self._rows) > 1:
            self._rows = [np.concatenate(self._rows, axis=0)]
        return self._rows[0]

    def get_mean_cov(self):
        """Mean [F] and (biased, 1/N) covariance [F, F] of the rows, in float64."""
        assert self.capture_mean_cov, 'FeatureStats was created without capture_mean_cov'
        mean = self._sum / self.num_items
        cov = self._sum_outer / self.num_items - np.outer(mean, mean)
        return mean, cov

    #------------------------------------------------------------------------
    # Plain .npz on disk (no pickle: a cache file must not be able to run code when read).

    def save(self, path):
        """Write atomically to `path` (a temp file renamed into place); True if written.

        The file is only ever a cache: the statistics in memory stay valid, and so does the metric computed
        from them. So a full disk or a read-only place (dnnlib.util.WriteError) warns in one line on stderr
        and returns False instead of failing the evaluation; the next run computes the statistics again.
        """
        arrays = dict(
            capture_all=np.array(self.capture_all),
            capture_mean_cov=np.array(self.capture_mean_cov),
            max_items=np.array(-1 if self.max_items is None else self.max_items, dtype=np.int64),
            num_items=np.array(self.num_items, dtype=np.int64),
            num_features=np.array(-1 if self.num_features is None else self.num_features, dtype=np.int64),
        )
        if self.capture_all and self.num_features is not None:
            arrays['rows'] = self.get_all()
        if self.capture_mean_cov and self.num_features is not None:
            arrays['sum'] = self._sum
            arrays['sum_outer'] = self._sum_outer
        try:
            with dnnlib.util.atomic_write(path, 'wb') as f:
                np.savez(f, **arrays)
        except dnnlib.util.WriteError as error:
            print(f'Warning: feature statistics not cached, the result is unaffected: {error}', file=sys.stderr)
            return False
        return True

    @staticmethod
    def load(path):
        with np.load(path, allow_pickle=False) as data:
            max_items = int(data['max_items'])
            stats = FeatureStats(capture_all=bool(data['capture_all']), capture_mean_cov=bool(data['capture_mean_cov']),
                                 max_items=None if max_items < 0 else max_items)
            stats.num_items = int(data['num_items'])
            num_features = int(data['num_features'])
            stats.num_features = None if num_features < 0 else num_features
            if 'rows' in data:
                stats._rows = [data['rows']]
            if 'sum' in data:
                stats._sum = data['sum']
                stats._sum_outer = data['sum_outer']
        return stats
