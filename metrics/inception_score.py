"""Inception Score (Salimans et al. 2016): exp of the mean KL divergence between p(y|x) and p(y), over splits."""

import numpy as np

from metrics import detectors
from metrics import metric_utils

DETECTOR_KWARGS = dict(no_output_bias=True)  # The public Inception file then returns class probabilities.


def inception_score(probs, num_splits):
    """(mean, std) over `num_splits` consecutive splits of exp(E_x KL(p(y|x) || p(y))); probs is [N, classes]."""
    probs = np.asarray(probs, dtype=np.float64)
    n = probs.shape[0]
    if n < num_splits:
        raise ValueError(f'Inception Score with {num_splits} splits needs at least {num_splits} samples, got {n}')
    scores = []
    for i in range(num_splits):
        part = probs[i * n // num_splits: (i + 1) * n // num_splits]
        marginal = part.mean(axis=0, keepdims=True)
        # 0 * log 0 = 0: classes with zero probability add nothing to the divergence.
        with np.errstate(divide='ignore', invalid='ignore'):
            terms = np.where(part > 0, part * (np.log(part) - np.log(marginal)), 0.0)
        scores.append(np.exp(terms.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def compute_is(opts, num_gen, num_splits):
    """Inception Score of `num_gen` generated images."""
    probs = metric_utils.compute_feature_stats_for_generator(
        opts, detector=detectors.INCEPTION, detector_kwargs=DETECTOR_KWARGS,
        capture_all=True, max_items=num_gen).get_all()
    if opts.rank != 0:
        return float('nan'), float('nan')
    return inception_score(probs, num_splits)
