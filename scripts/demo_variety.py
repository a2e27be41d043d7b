"""How varied a conditional run's samples are within a class, against the real images of that class.

    python scripts/demo_variety.py RUN_DIR [--samples=16] [--snapshot=network-snapshot-NNNNNN.pkl]

For each class: the mean pairwise pixel distance (RMS over pixels, images in [0, 1]) of `--samples` generated
images (seeds 0..N-1, the run's last snapshot or --snapshot, no truncation), divided by the same for `--samples`
real images of that class (the first ones of the run's dataset). A ratio near 1 means the samples vary as much as the data; a
collapsed generator (one shape per class) scores near 0. Prints one line per class and the mean; exits 1 when
any class is below --min-ratio (0.5: the demo's bar).
"""

import json
import os
import sys

import click
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import generate  # noqa: E402
from training.dataset import ImageFolderDataset  # noqa: E402


def mean_pairwise_distance(images):
    """Mean RMS pixel distance over all pairs of [N, C, H, W] uint8 images, in [0, 1] units."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float64).flatten(1) / 255
    distances = torch.cdist(x, x) / x.shape[1] ** 0.5
    n = len(x)
    return float(distances.sum() / (n * (n - 1)))


def real_images_of_class(dataset, class_idx, count):
    found = []
    for index in range(len(dataset)):
        if int(np.argmax(dataset.get_label(index))) == class_idx:
            found.append(dataset[index][0])
            if len(found) == count:
                break
    return np.stack(found)


def generated_images_of_class(G, class_idx, count):
    labels = generate.make_labels(G, class_idx, count, torch.device('cpu'))
    with torch.no_grad():
        images = [image for _name, image in generate.render_seeds(G, list(range(count)), labels, 1, None, 'const',
                                                                  count, torch.device('cpu'))]
    return np.stack(images).transpose(0, 3, 1, 2)


@click.command()
@click.argument('run_dir', type=click.Path(exists=True, file_okay=False))
@click.option('--samples', type=click.IntRange(min=2), default=16, show_default=True, help='Images per class and side')
@click.option('--min-ratio', type=float, default=0.5, show_default=True, help='Lowest acceptable ratio')
@click.option('--snapshot', metavar='FILE', help='A snapshot of RUN_DIR by file name  [default: the last]')
def main(run_dir, samples, min_ratio, snapshot):
    """Within-class variety of a conditional run's samples, relative to its data."""
    snapshots = sorted(f for f in os.listdir(run_dir) if f.startswith('network-snapshot-') and f.endswith('.pkl'))
    if not snapshots:
        raise click.ClickException(f'{run_dir} holds no network-snapshot-*.pkl')
    if snapshot is not None and snapshot not in snapshots:
        raise click.BadParameter(f'{snapshot!r} is not a snapshot of {run_dir}; it holds {", ".join(snapshots)}',
                                 param_hint='--snapshot')
    snapshot = snapshot or snapshots[-1]
    G = generate.load_generator(os.path.join(run_dir, snapshot), torch.device('cpu'))
    if G.c_dim == 0:
        raise click.ClickException(f'{snapshot} is unconditional: variety within a class needs classes')
    with open(os.path.join(run_dir, 'training_options.json'), encoding='utf-8') as f:
        data = json.load(f)['training_set_kwargs']['path']
    dataset = ImageFolderDataset(data, use_labels=True)
    ratios = []
    for class_idx in range(G.c_dim):
        real = mean_pairwise_distance(real_images_of_class(dataset, class_idx, samples))
        fake = mean_pairwise_distance(generated_images_of_class(G, class_idx, samples))
        ratios.append(fake / real)
        click.echo(f'class {class_idx}: generated {fake:.4f}, real {real:.4f}, ratio {fake / real:.2f}')
    click.echo(f'{snapshot}: mean ratio {np.mean(ratios):.2f}, lowest {min(ratios):.2f} (bar {min_ratio})')
    if min(ratios) < min_ratio:
        raise SystemExit(1)


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
