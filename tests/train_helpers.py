"""Fixtures for the training tests: tiny image datasets on disk and option dicts for tiny configurations."""

import json
import os
import pickle

import numpy as np
import PIL.Image

# Small enough that a training step takes well under a second on 2 CPU cores.
TINY_ARGS = ['--cfg=auto', '--cbase=512', '--cmax=32', '--map=2', '--batch=4', '--metrics=none', '--aug=noaug',
             '--device=cpu', '--workers=0', '--tick=0.008', '--kimg=0.024', '--snap=1', '--fp32']


def write_image_folder(path, num_images=8, resolution=16, channels=3, labels=None, seed=0, class_names=None):
    """Write `num_images` random square PNGs (and dataset.json when labels are given, with `class_names` when
    given) into folder `path`."""
    rnd = np.random.RandomState(seed)
    os.makedirs(path, exist_ok=True)
    names = []
    for i in range(num_images):
        pixels = rnd.randint(0, 256, size=[resolution, resolution, channels], dtype=np.uint8)
        name = f'img{i:05d}.png'
        PIL.Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels).save(os.path.join(path, name))
        names.append(name)
    if labels is not None:
        with open(os.path.join(path, 'dataset.json'), 'w', encoding='utf-8') as f:
            content = {'labels': [[n, int(labels[i % len(labels)])] for i, n in enumerate(names)]}
            json.dump(content if class_names is None else dict(content, class_names=class_names), f)
    return str(path)


def tiny_options(outdir, data, **overrides):
    """Option dict for training.cli.config.resolve_config describing a tiny CPU run."""
    options = dict(outdir=str(outdir), data=str(data), cfg='auto', cbase=512, cmax=32, map=2, batch=4,
                   metrics='none', aug='noaug', device='cpu', workers=0, tick=0.008, kimg=0.024, snap=1, fp32=True)
    options.update(overrides)
    return options


def tiny_config(outdir, data, env=None, **overrides):
    """A resolved config shrunk further than the CLI allows (z/w 32, 2x2 grids) for fast loop tests."""
    from training.cli.config import resolve_config  # pylint: disable=import-outside-toplevel
    config = resolve_config(tiny_options(outdir, data, **overrides), env=env or {})
    config.G_kwargs.z_dim = config.G_kwargs.w_dim = 32
    config.grid_size = (2, 2)
    return config


def final_snapshot_tensors(run_dir):
    """Every tensor of G, D and G_ema in the run's last snapshot, by name, plus the augment pipe's p."""
    names = sorted(f for f in os.listdir(run_dir) if f.startswith('network-snapshot-') and f.endswith('.pkl'))
    with open(os.path.join(run_dir, names[-1]), 'rb') as f:
        snapshot = pickle.load(f)
    tensors = {f'{key}.{name}': t for key in ('G', 'D', 'G_ema') for name, t in snapshot[key].state_dict().items()}
    tensors['augment_p'] = snapshot['augment_pipe'].p
    return tensors
