"""Tiny networks and snapshot files for the generate.py and weights-only format tests."""

import copy
import os
import pickle

import numpy as np
import PIL.Image
import torch
from click.testing import CliRunner

import dnnlib

RESOLUTION = 16


def tiny_generator_kwargs(c_dim=0, architecture='skip'):
    return dict(
        z_dim=16,
        c_dim=c_dim,
        w_dim=16,
        img_resolution=RESOLUTION,
        img_channels=3,
        mapping_kwargs=dnnlib.EasyDict(num_layers=2),
        synthesis_kwargs=dnnlib.EasyDict(channel_base=256, channel_max=32, num_fp16_res=0, conv_clamp=None,
                                         architecture=architecture),
    )


def make_networks(c_dim=0, seed=0):
    """A snapshot-like dict: G, D, G_ema (eval, no grad), no augment pipe, training_set_kwargs."""
    from training import networks
    torch.manual_seed(seed)
    G = networks.Generator(**tiny_generator_kwargs(c_dim=c_dim))
    D = networks.Discriminator(c_dim=c_dim, img_resolution=RESOLUTION, img_channels=3, channel_base=256,
                               channel_max=32, num_fp16_res=0, conv_clamp=None)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    # A trained generator's w_avg is far from zero; a zero one would make truncation tests vacuous.
    G_ema.mapping.w_avg.copy_(torch.randn_like(G_ema.mapping.w_avg))
    return dict(
        G=G.eval().requires_grad_(False),
        D=D.eval().requires_grad_(False),
        G_ema=G_ema,
        augment_pipe=None,
        training_set_kwargs=dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path='data.zip',
                                            use_labels=c_dim > 0, max_size=10, xflip=False, resolution=RESOLUTION),
    )


def write_snapshot(path, networks):
    """Pickle `networks` the way the training loop writes network-snapshot-*.pkl."""
    with open(path, 'wb') as f:
        pickle.dump(networks, f)
    return str(path)


def run_cli(command, args):
    """Run a click command in-process; returns click's Result."""
    return CliRunner().invoke(command, [str(arg) for arg in args], catch_exceptions=True)


def error_line(result):
    """The single 'Error: ...' line of a failed CLI run (asserts there is exactly one, and no traceback)."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # An uncaught one would be the exception.
    lines = [line for line in result.output.splitlines() if line.startswith('Error')]
    assert len(lines) == 1, result.output
    return lines[0]


def read_png(path):
    return np.asarray(PIL.Image.open(path))


def png_bytes(folder):
    """{file name: bytes} of the PNGs in `folder`."""
    return {name: open(os.path.join(folder, name), 'rb').read()
            for name in sorted(os.listdir(folder)) if name.endswith('.png')}


def official_seed_image(G, seed, truncation_psi=1, class_idx=None):
    """The image stylegan2-ada-pytorch's generate.py makes for `seed`, as an HWC uint8 array."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim))
    label = torch.zeros([1, G.c_dim])
    if class_idx is not None:
        label[:, class_idx] = 1
    with torch.no_grad():
        img = G(z, label, truncation_psi=truncation_psi, noise_mode='const')
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()


def tiny_snapshot(folder, c_dim=0):
    """(G_ema, path) of make_networks(c_dim) written as network-snapshot-000000.pkl in `folder`."""
    networks = make_networks(c_dim=c_dim)
    return networks['G_ema'], write_snapshot(folder / 'network-snapshot-000000.pkl', networks)
