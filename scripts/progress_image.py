"""One picture of a run's progress: a few of its fakes grids side by side, evenly spread from first to last.

    python scripts/progress_image.py RUN_DIR [--panels=6] [--rows=ALL] [--out=RUN_DIR/progress.png]

The fakes grids of a run (fakes_init.png, fakesNNNNNN.png, fakesNNNNNN_RRRimg.png) all draw the same
latents, so panels side by side show the same samples growing from noise into images. Each panel is the grid's
first --rows rows, labelled above with the images shown when it was drawn; the picture is scaled to fit a
1920x1080 screen (whole-pixel enlargement when it is small). Written through a temporary name and renamed.
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
SCREEN = (1920, 1080)
LABEL_HEIGHT = 16
GAP = 4


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


def spread(items, count):
    """`count` items evenly spread over `items`, the first and the last included (all of them if fewer; the last alone
    for one)."""
    if len(items) <= count:
        return list(items)
    if count == 1:
        return [items[-1]]  # The most trained.
    return [items[int(i * (len(items) - 1) / (count - 1) + 0.5)] for i in range(count)]


def progress_image(run_dir, panels=6, rows=None):
    """HWC uint8 image: `panels` labelled grids (their first `rows` rows) side by side, fitted to SCREEN."""
    with open(os.path.join(run_dir, 'training_options.json'), encoding='utf-8') as f:
        _cols, grid_rows = json.load(f)['grid_size']
    chosen = spread(fakes_in_order(run_dir), panels)
    if not chosen:
        raise click.ClickException(f'{run_dir} holds no fakes*.png grids; train with --snap small enough to write some')
    crops = []
    for _kimg, path in chosen:
        grid = PIL.Image.open(path).convert('RGB')
        crops.append(grid.crop((0, 0, grid.width, grid.height // grid_rows * min(rows or grid_rows, grid_rows))))
    width, height = crops[0].size
    scale = min((SCREEN[0] - GAP * (len(crops) - 1)) / (width * len(crops)), (SCREEN[1] - LABEL_HEIGHT) / height)
    scale = int(scale) if scale >= 1 else scale  # Whole pixels when enlarging; smooth when shrinking.
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    canvas = PIL.Image.new('RGB', (size[0] * len(crops) + GAP * (len(crops) - 1), size[1] + LABEL_HEIGHT),
                           (255, 255, 255))
    draw = PIL.ImageDraw.Draw(canvas)
    for index, ((kimg, _path), crop) in enumerate(zip(chosen, crops)):
        left = index * (size[0] + GAP)
        resample = PIL.Image.NEAREST if scale >= 1 else PIL.Image.LANCZOS
        canvas.paste(crop.resize(size, resample), (left, LABEL_HEIGHT))
        draw.text((left + 2, 2), f'{kimg:g} kimg', fill=(0, 0, 0))
    return np.asarray(canvas)


@click.command()
@click.argument('run_dir', type=click.Path(exists=True, file_okay=False))
@click.option('--panels', type=click.IntRange(min=1), default=6, show_default=True, help='Grids side by side')
@click.option('--rows', type=click.IntRange(min=1), help='Grid rows per panel [default: all]')
@click.option('--out', type=click.Path(dir_okay=False), help='Output PNG [default: RUN_DIR/progress.png]')
def main(run_dir, panels, rows, out):
    """Put a few of the run's fakes grids side by side in one progress picture."""
    out = out or os.path.join(run_dir, 'progress.png')
    image = progress_image(run_dir, panels, rows)
    with dnnlib.util.atomic_write(out, 'wb') as f:
        PIL.Image.fromarray(image).save(f, format='png')
    click.echo(f'Wrote {out}')


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
