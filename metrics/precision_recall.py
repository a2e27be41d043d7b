"""Improved precision and recall (Kynkäänniemi et al. 2019): k-NN manifolds of VGG16 features, in batches."""

import numpy as np
import torch

from metrics import detectors
from metrics import metric_utils

DETECTOR_KWARGS = dict(return_features=True)  # 4096-dim fc features of the public VGG16 file.


def kth_neighbour_radii(manifold, nhood_size, batch_size):
    """Distance from each manifold point to its `nhood_size`-th nearest other point (itself is at distance 0).

    Distances are computed in [batch_size, batch_size] tiles, keeping the nhood_size + 1 smallest per row,
    so memory does not grow with the number of points.
    """
    radii = []
    for rows in manifold.split(batch_size):
        nearest = rows.new_zeros([rows.shape[0], 0])
        for cols in manifold.split(batch_size):
            candidates = torch.cat([nearest, torch.cdist(rows, cols)], dim=1)
            nearest = candidates.topk(min(nhood_size + 1, candidates.shape[1]), dim=1, largest=False).values
        radii.append(nearest[:, nhood_size])
    return torch.cat(radii)


def fraction_inside(manifold, radii, probes, batch_size):
    """Fraction of probes within the radius of at least one manifold point (computed in tiles)."""
    inside = []
    for rows in probes.split(batch_size):
        hit = torch.zeros([rows.shape[0]], dtype=torch.bool, device=rows.device)
        for cols, col_radii in zip(manifold.split(batch_size), radii.split(batch_size)):
            hit |= (torch.cdist(rows, cols) <= col_radii.unsqueeze(0)).any(dim=1)
        inside.append(hit)
    return float(torch.cat(inside).double().mean())


def precision_recall(real_features, gen_features, nhood_size, batch_size=10000, device='cpu'):
    """(precision, recall): generated samples inside the real manifold, real samples inside the generated one."""
    real = torch.as_tensor(np.asarray(real_features), dtype=torch.float32, device=device)
    gen = torch.as_tensor(np.asarray(gen_features), dtype=torch.float32, device=device)
    for name, points in (('real', real), ('generated', gen)):
        if points.shape[0] <= nhood_size:
            raise ValueError(f'precision/recall with k={nhood_size} needs more than {nhood_size} {name} samples, got {points.shape[0]}')
    precision = fraction_inside(real, kth_neighbour_radii(real, nhood_size, batch_size), gen, batch_size)
    recall = fraction_inside(gen, kth_neighbour_radii(gen, nhood_size, batch_size), real, batch_size)
    return precision, recall


def compute_pr(opts, max_real, num_gen, nhood_size, batch_size=10000):
    """(precision, recall) between up to `max_real` dataset images and `num_gen` generated images."""
    real_features, gen_features = metric_utils.compute_all_features(
        opts, detectors.VGG16, DETECTOR_KWARGS, max_real=max_real, num_gen=num_gen)
    if opts.rank != 0:
        return float('nan'), float('nan')
    return precision_recall(real_features, gen_features, nhood_size, batch_size, device=opts.device)
