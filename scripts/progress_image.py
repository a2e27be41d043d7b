"""One picture of a run's progress: the first rows of every fakes grid (same latents each time), oldest on top.

    python scripts/progress_image.py RUN_DIR [--rows=1] [--scale=4] [--out=RUN_DIR/progress.png]

The fakes grids of a run (fakes_init.png, fakesNNNNNN.png, fakesNNNNNN_RRRimg.png) all draw the same
latents, so stacking their first rows shows the same samples growing from noise into images. Each strip is
labelled with the images shown when it was drawn. Written through a temporary name and renamed.
"""

import json
import os
import re
import sys

import click
import numpy as np
import PIL.Image
import PIL.ImageDraw

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dnnlib  # noqa: E402

FAKES_RE = re.compile(r'^fakes(?:_init|(\d{6})(?:_(\d{3})img)?)\.png$')
LABEL_WIDTH = 64


def fakes_in_order(run_dir):
    """[(kimg, path)] of the run's fakes grids in training order (fakes_init.png first, at kimg 0)."""
    found = []
    for name in os.listdir(run_dir):
        match = FAKES_RE.match(name)
        if match:
            kimg = 0.0 if match.group(1) is None else int(match.group(1)) + int(match.group(2) or 0) / 1000
            found.append((match.group(1) is not None, kimg, os.path.join(run_dir, name)))
    ordered = [(kimg, path) for _later, kimg, path in sorted(found)]
    if len(ordered) > 1 and ordered[1][0] == 0:  # fakes000000.png (after the first step) makes fakes_init redundant.
        ordered = ordered[1:]
    return ordered


def progress_image(run_dir, rows=1, scale=4):
    """HWC uint8 image: one labelled strip (the first `rows` grid rows) per fakes grid."""
    with open(os.path.join(run_dir, 'training_options.json'), encoding='utf-8') as f:
        cols, grid_rows = json.load(f)['grid_size']
    strips = []
    for kimg, path in fakes_in_order(run_dir):
        grid = PIL.Image.open(path).convert('RGB')
        cell = grid.height // grid_rows
        strip = grid.crop((0, 0, grid.width, cell * min(rows, grid_rows)))
        strip = strip.resize((strip.width * scale, strip.height * scale), PIL.Image.NEAREST)
        labelled = PIL.Image.new('RGB', (strip.width + LABEL_WIDTH, strip.height), (255, 255, 255))
        labelled.paste(strip, (LABEL_WIDTH, 0))
        PIL.ImageDraw.Draw(labelled).text((4, strip.height // 2 - 5), f'{kimg:g} kimg', fill=(0, 0, 0))
        strips.append(np.asarray(labelled))
    if not strips:
        raise click.ClickException(f'{run_dir} holds no fakes*.png grids; train with --snap small enough to write some')
    return np.concatenate(strips, axis=0)


@click.command()
@click.argument('run_dir', type=click.Path(exists=True, file_okay=False))
@click.option('--rows', type=click.IntRange(min=1), default=1, show_default=True, help='Grid rows per strip')
@click.option('--scale', type=click.IntRange(min=1, max=16), default=4, show_default=True, help='Pixel scale')
@click.option('--out', type=click.Path(dir_okay=False), help='Output PNG [default: RUN_DIR/progress.png]')
def main(run_dir, rows, scale, out):
    """Stack the run's fakes grids into one progress picture."""
    out = out or os.path.join(run_dir, 'progress.png')
    image = progress_image(run_dir, rows, scale)
    with dnnlib.util.atomic_write(out, 'wb') as f:
        PIL.Image.fromarray(image).save(f, format='png')
    click.echo(f'Wrote {out}')


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
