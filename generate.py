"""Generate images from a trained network: seeds, projected W vectors, or a style-mixing grid."""

import contextlib
import math
import os
import re

import click
import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont
import torch

import dnnlib
from training import export

#----------------------------------------------------------------------------
# Seed lists and layer lists: '0-35', '1,5,9', or both mixed ('0-3,7').

MAX_SEED = 2**32 - 1  # np.random.RandomState accepts seeds in [0, 2**32).
_ITEM = re.compile(r'^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$')


def parse_int_list(text, what='seed', max_value=MAX_SEED):
    """'0-3,7' -> [0, 1, 2, 3, 7]. Raises ValueError naming the bad item and the accepted forms."""
    if text is None or not str(text).strip():
        raise ValueError(f'empty {what} list; use e.g. 0-35, 1,5,9 or 0-3,7')
    values = []
    for item in str(text).split(','):
        match = _ITEM.match(item)
        if match is None:
            raise ValueError(f'{item.strip()!r} in {text!r} is not a {what} or range; use e.g. 0-35, 1,5,9 or 0-3,7')
        first = int(match.group(1))
        last = first if match.group(2) is None else int(match.group(2))
        if last < first:
            raise ValueError(f'range {item.strip()!r} in {text!r} runs backwards; write it low-high')
        if last > max_value:
            raise ValueError(f'{what} {last} in {text!r} is above the largest accepted, {max_value}')
        values.extend(range(first, last + 1))
    return values


class ClassChoice(click.ParamType):
    """--class: a class index, or 'all' for one grid row per class."""
    name = 'class'

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, int) or value == 'all':
            return value
        try:
            return int(value)
        except ValueError:
            self.fail(f'{value!r}: accepted: a class index (0, 1, ...) or all', param, ctx)


class IntList(click.ParamType):
    """Click type for parse_int_list."""
    name = 'list'

    def __init__(self, what):
        self.what = what

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        try:
            return parse_int_list(value, what=self.what)
        except ValueError as error:
            self.fail(str(error), param, ctx)

#----------------------------------------------------------------------------
# Latents and images, exactly as stylegan2-ada-pytorch makes them.


def z_from_seed(seed, z_dim):
    """The [1, z_dim] float64 latent that stylegan2-ada-pytorch draws for `seed`."""
    return np.random.RandomState(seed).randn(1, z_dim)


def zs_from_seeds(seeds, z_dim, device):
    return torch.from_numpy(np.concatenate([z_from_seed(seed, z_dim) for seed in seeds])).to(device)


def to_uint8(images):
    """NCHW float images in [-1, 1] -> NHWC uint8 numpy array (the official rounding: x*127.5+128, truncated)."""
    return (images.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()


def to_pil(image):
    """HWC uint8 array with 1 or 3 channels -> PIL image."""
    if image.shape[2] == 1:
        return PIL.Image.fromarray(image[:, :, 0], 'L')
    if image.shape[2] == 3:
        return PIL.Image.fromarray(image, 'RGB')
    raise click.ClickException(f'cannot write images with {image.shape[2]} channels as PNG; 1 or 3 are supported')


def tile(cells, rows, cols, height, width, channels):
    """Paste {(row, col): HWC image} into one [rows*H, cols*W, C] array; empty cells stay black."""
    canvas = np.zeros([rows * height, cols * width, channels], dtype=np.uint8)
    for (row, col), image in cells.items():
        canvas[row * height:(row + 1) * height, col * width:(col + 1) * width] = image
    return canvas


def write_png(path, image):
    """Write one HWC uint8 image atomically (temporary name, then rename)."""
    with dnnlib.util.atomic_write(path, 'wb') as f:
        to_pil(image).save(f, format='PNG')

#----------------------------------------------------------------------------
# Checks that turn bad input into one-line errors.


def make_labels(G, class_idx, batch_size, device):
    """One-hot class labels for a conditional network; an empty [N, 0] tensor otherwise."""
    if class_idx == 'all':
        raise click.BadParameter('all draws one grid row per class of --seeds; give a class index here',
                                 param_hint='--class')
    labels = torch.zeros([batch_size, G.c_dim], device=device)
    if G.c_dim == 0:
        if class_idx is not None:
            raise click.BadParameter(f'{class_idx} given, but the network is unconditional (c_dim=0); drop --class',
                                     param_hint='--class')
        return labels
    if class_idx is None:
        raise click.UsageError(f'the network is conditional with {G.c_dim} classes; choose one with --class=0..{G.c_dim - 1}')
    if not 0 <= class_idx < G.c_dim:
        raise click.BadParameter(f'{class_idx} is out of range; the network has classes 0..{G.c_dim - 1}',
                                 param_hint='--class')
    labels[:, class_idx] = 1
    return labels


def finite_psi(ctx, param, value):
    """Click callback for --trunc: nan and inf would pass float() but give meaningless (or nan) images."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f'{value} is not a finite number; accepted: any finite number '
                                 f'(1 = no truncation, 0 = the average image, e.g. 0.7)')
    return value


def check_outdir(outdir):
    """--outdir must be a folder, or a path where one can be created; a file (or a path under one) is a usage error."""
    problem = dnnlib.util.output_dir_problem(outdir)
    if problem is not None:
        raise click.BadParameter(f'{problem}; choose a folder (it is created if missing)', param_hint='--outdir')


def make_outdir(outdir):
    """Create --outdir; a full disk or a read-only place is one line naming it."""
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as error:
        problem = dnnlib.util.write_error(error, outdir)
        if problem is None:
            raise
        raise click.ClickException(str(problem)) from None


def load_generator(network_path, device):
    """G_ema of a snapshot, official pickle or model.pt (read without running code); anything else is one line."""
    return load_generator_and_class_names(network_path, device)[0]


def load_generator_and_class_names(network_path, device):
    """(G_ema, the class names the file carries or None); see load_generator."""
    try:
        networks = export.load_network(network_path, device=device)
    except export.NetworkFileError as error:
        raise click.ClickException(str(error)) from error
    if networks['G_ema'] is None:
        raise click.ClickException(f'{network_path} holds no G_ema generator')
    return networks['G_ema'], networks['class_names']


def choose_device(name):
    if name is None:
        name = 'cuda' if torch.cuda.is_available() else 'cpu'
    if name == 'cuda' and not torch.cuda.is_available():
        raise click.BadParameter('cuda requested, but torch sees no CUDA device; use --device=cpu', param_hint='--device')
    return torch.device(name)


def check_targets(paths, protected, overwrite):
    """Refuse to write over a source file ever, or over any existing file without --overwrite."""
    protected = {os.path.realpath(p) for p in protected if p is not None and os.path.exists(p)}
    for path in paths:
        if os.path.realpath(path) in protected:
            raise click.UsageError(f'{path} is an input file; choose another --outdir')
    existing = [path for path in paths if os.path.exists(path)]
    if existing and not overwrite:
        more = f' (and {len(existing) - 1} more)' if len(existing) > 1 else ''
        raise click.UsageError(f'{existing[0]} exists{more}; pass --overwrite to replace, or choose another --outdir')


def reject_options(ctx, mode, names):
    """Options that the chosen mode does not use are an error, not silently ignored."""
    for name in names:
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE:
            flag = '--' + {'class_idx': 'class', 'truncation_psi': 'trunc', 'truncation_cutoff': 'trunc-cutoff'}.get(
                name, name.replace('_', '-'))
            raise click.UsageError(f'{flag} does not apply to {mode}')


def load_ws(path, G, device):
    """[N, num_ws, w_dim] tensor from an .npz file with key 'w' (what projector.py writes)."""
    try:
        with np.load(path) as data:
            if 'w' not in data:
                raise click.BadParameter(f'{path} has no array named "w" (found: {", ".join(data.files) or "none"})',
                                         param_hint='--projected-w')
            ws = data['w']
    except (OSError, ValueError) as error:
        raise click.BadParameter(f'{path} is not a readable .npz file ({error})', param_hint='--projected-w') from error
    if ws.dtype.kind not in 'fiu':  # Strings, objects, booleans: not a W vector.
        raise click.BadParameter(f'{path}: w holds {ws.dtype} values; expected numbers (float32, as projector.py '
                                 f'writes)', param_hint='--projected-w')
    if ws.ndim != 3 or tuple(ws.shape[1:]) != (G.num_ws, G.w_dim):
        raise click.BadParameter(f'{path}: w has shape {list(ws.shape)}; this network needs [N, {G.num_ws}, {G.w_dim}]',
                                 param_hint='--projected-w')
    if not np.isfinite(ws).all():
        raise click.BadParameter(f'{path}: w holds nan or inf values; a projection that diverged cannot be rendered',
                                 param_hint='--projected-w')
    return torch.tensor(ws, device=device)

#----------------------------------------------------------------------------
# The three modes. Seeds and ws are rendered lazily, (file name, HWC uint8 image) at a time, so that
# thousands of seeds never sit in memory together unless they go into one grid.


def render_seeds(G, seeds, labels, truncation_psi, truncation_cutoff, noise_mode, batch_size, device):
    for start in range(0, len(seeds), batch_size):
        chunk = seeds[start:start + batch_size]
        z = zs_from_seeds(chunk, G.z_dim, device)
        out = G(z, labels[:len(chunk)], truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                noise_mode=noise_mode)
        for seed, image in zip(chunk, to_uint8(out)):
            yield f'seed{seed:04d}.png', image


def render_ws(G, ws, noise_mode, batch_size):
    for start in range(0, len(ws), batch_size):
        out = G.synthesis(ws[start:start + batch_size], noise_mode=noise_mode)
        for offset, image in enumerate(to_uint8(out)):
            yield f'proj{start + offset:02d}.png', image


def coarse_styles(num_ws):
    """The coarse styles of a network: the first third of its ws (0-5 of the 18 at 1024 px, whose 0-6 the StyleGAN
    papers mix; 0-1 of the demo's 8), at least one."""
    return list(range(max(1, num_ws // 3)))


def mixing_pairs(row_seeds, col_seeds):
    """(row_seed, col_seed) for every image a style-mixing grid needs; (seed, seed) is a seed's own image."""
    sources = [(seed, seed) for seed in dict.fromkeys(row_seeds + col_seeds)]
    return list(dict.fromkeys(sources + [(row, col) for row in row_seeds for col in col_seeds]))


def style_mix(G, pairs, styles, labels, truncation_psi, truncation_cutoff, noise_mode, batch_size, device, progress=None):
    """{(row_seed, col_seed): image}: the row seed's ws with the layers `styles` taken from the column seed.

    A (seed, seed) image equals what generate.py renders for that seed alone. progress: a
    dnnlib.progress.Progress advanced per image rendered, or None.
    """
    seeds = list(dict.fromkeys(seed for pair in pairs for seed in pair))
    ws = {}
    for start in range(0, len(seeds), batch_size):
        chunk = seeds[start:start + batch_size]
        z = zs_from_seeds(chunk, G.z_dim, device)
        w = G.mapping(z, labels[:len(chunk)], truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        ws.update(zip(chunk, w))
    images = {}
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        mixed = []
        for row_seed, col_seed in chunk:
            w = ws[row_seed].clone()
            w[styles] = ws[col_seed][styles]
            mixed.append(w)
        out = G.synthesis(torch.stack(mixed), noise_mode=noise_mode)
        images.update(zip(chunk, to_uint8(out)))
        if progress is not None:
            progress.advance(len(chunk))
    return images


def style_mix_grid(images, row_seeds, col_seeds):
    """(rows+1) x (cols+1) grid: column sources along the top, row sources down the left, mixes inside."""
    cells = {}
    for col, col_seed in enumerate(col_seeds):
        cells[(0, col + 1)] = images[(col_seed, col_seed)]
    for row, row_seed in enumerate(row_seeds):
        cells[(row + 1, 0)] = images[(row_seed, row_seed)]
        for col, col_seed in enumerate(col_seeds):
            cells[(row + 1, col + 1)] = images[(row_seed, col_seed)]
    height, width, channels = next(iter(images.values())).shape
    return tile(cells, len(row_seeds) + 1, len(col_seeds) + 1, height, width, channels)


def class_grid(G, seeds, truncation_psi, truncation_cutoff, noise_mode, batch_size, device, progress):
    """One row per class of a conditional G, one column per seed: the HWC uint8 grid."""
    if G.c_dim == 0:
        raise click.BadParameter('all given, but the network is unconditional (c_dim=0); drop --class', param_hint='--class')
    cells = {}
    for class_idx in range(G.c_dim):
        labels = make_labels(G, class_idx, min(batch_size, len(seeds)), device)
        for col, (_name, image) in enumerate(render_seeds(G, seeds, labels, truncation_psi, truncation_cutoff,
                                                          noise_mode, batch_size, device)):
            cells[(class_idx, col)] = image
            progress.update(1)
    height, width, channels = cells[(0, 0)].shape
    return tile(cells, G.c_dim, len(seeds), height, width, channels)


def name_rows(grid, names, row_height):
    """`grid` (HWC uint8) with a black strip on its left holding names[i] beside row i (light text)."""
    font = PIL.ImageFont.load_default()
    probe = PIL.ImageDraw.Draw(PIL.Image.new('L', (1, 1)))
    boxes = [probe.textbbox((0, 0), name, font=font) for name in names]
    strip = PIL.Image.new('L', (max(box[2] for box in boxes) + 6, grid.shape[0]), 0)
    draw = PIL.ImageDraw.Draw(strip)
    for row, (name, box) in enumerate(zip(names, boxes)):
        draw.text((3, row * row_height + (row_height - box[3]) // 2), name, fill=230, font=font)
    strip = np.repeat(np.asarray(strip)[:, :, np.newaxis], grid.shape[2], axis=2)
    return np.concatenate([strip, grid], axis=1)


def seed_grid(images):
    """A near-square grid of images in order, filled row by row."""
    images = list(images)
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    height, width, channels = images[0].shape
    return tile({divmod(i, cols): image for i, image in enumerate(images)}, rows, cols, height, width, channels)


@contextlib.contextmanager
def write_errors_as_one_line():
    """A full disk or a read-only place (dnnlib.util.WriteError, one line naming the file) ends the run as one
    'Error:' line; every image written before it is complete, and no temporary file is left."""
    try:
        yield
    except dnnlib.util.WriteError as error:
        raise click.ClickException(str(error)) from None


def progress_bar(total):
    """Images done of `total`, the rate and the ETA on stderr: one line redrawn in place on a terminal, a line
    per tenth of the work (or per 30 s) in a log, never one per seed."""
    return dnnlib.progress.Progress(total=total, label='Generating', unit='images')


def counted(named_images, progress):
    """Pass (name, image) pairs through, advancing `progress` once each has been used."""
    for named_image in named_images:
        yield named_image
        progress.advance()


def write_images(named_images, outdir, grid):
    """Write each (name, image) as it arrives, or all of them as one grid.png."""
    if grid:
        write_png(os.path.join(outdir, 'grid.png'), seed_grid(image for _name, image in named_images))
        return
    for name, image in named_images:
        write_png(os.path.join(outdir, name), image)

#----------------------------------------------------------------------------


@click.command()
@click.pass_context
@click.option('--network', 'network_path', help='Network: snapshot or official pickle, or weights-only .pt (path or URL)', required=True, metavar='PATH')
@click.option('--seeds',          type=IntList('seed'), help='Random seeds, e.g. 0-35, 1,5,9 or 0-3,7')
@click.option('--trunc',          'truncation_psi', type=float, callback=finite_psi, help='Truncation psi (1 = none)', default=1, show_default=True)
@click.option('--trunc-cutoff',   'truncation_cutoff', type=click.IntRange(min=0), help='Truncate only the first N ws [default: all]')
@click.option('--class',          'class_idx', type=ClassChoice(), help='Class label (conditional networks only); all: one grid row per class, --seeds as columns')
@click.option('--noise-mode',     type=click.Choice(['const', 'random', 'none']), help='Noise mode', default='const', show_default=True)
@click.option('--outdir',         help='Where to write the images', required=True, metavar='DIR')
@click.option('--projected-w',    help='Render the ws in this .npz (key "w", shape [N, num_ws, w_dim])', metavar='FILE')
@click.option('--grid',           help='Write one grid.png instead of one file per image', is_flag=True)
@click.option('--rows',           'row_seeds', type=IntList('seed'), help='Style mixing: seeds of the grid rows')
@click.option('--cols',           'col_seeds', type=IntList('seed'), help='Style mixing: seeds of the grid columns')
@click.option('--styles',         type=IntList('layer'), help='Style mixing: ws taken from the column seed [default: the coarse styles, the first third of the ws]')
@click.option('--individual',     help='Style mixing: also write each image as ROW-COL.png', is_flag=True)
@click.option('--batch',          'batch_size', type=click.IntRange(min=1), help='Images per forward pass', default=1, show_default=True)
@click.option('--device',         'device_name', type=click.Choice(['cuda', 'cpu']), help='Device [default: cuda when available]')
@click.option('--overwrite',      help='Replace existing images in --outdir', is_flag=True)
def generate_images(ctx, network_path, seeds, truncation_psi, truncation_cutoff, class_idx, noise_mode, outdir,
                    projected_w, grid, row_seeds, col_seeds, styles, individual, batch_size, device_name, overwrite):
    """Generate images using a trained network.

    \b
    # One PNG per seed (seed0000.png ...), truncated towards the average image:
    python generate.py --outdir=out --trunc=0.7 --seeds=600-605 --network=network-snapshot-001000.pkl

    \b
    # A class-conditional network, all images in one grid; or one row per class:
    python generate.py --outdir=out --seeds=0-35 --class=1 --grid --network=model.pt
    python generate.py --outdir=out --seeds=0-7 --class=all --network=model.pt

    \b
    # Style mixing: coarse styles (the first third of the ws) of the column seeds over the row seeds, in grid.png:
    python generate.py --outdir=out --rows=85,100,75 --cols=55,821,1789 --styles=0-6 --network=model.pt

    \b
    # Render the ws a projection wrote:
    python generate.py --outdir=out --projected-w=projected_w.npz --network=model.pt
    """
    # Decide the mode before the (slow) network load, so flag mistakes fail at once.
    if projected_w is not None:
        mode = 'projected-w'
        reject_options(ctx, '--projected-w', ['seeds', 'row_seeds', 'col_seeds', 'styles', 'individual',
                                              'truncation_psi', 'truncation_cutoff', 'class_idx'])
    elif row_seeds is not None or col_seeds is not None:
        mode = 'style mixing'
        if row_seeds is None or col_seeds is None:
            raise click.UsageError('style mixing needs both --rows and --cols')
        reject_options(ctx, 'style mixing (--rows/--cols)', ['seeds'])
    else:
        mode = 'seeds'
        if seeds is None:
            raise click.UsageError('give --seeds (or --projected-w, or --rows with --cols for style mixing)')
        reject_options(ctx, '--seeds', ['styles', 'individual'])
    check_outdir(outdir)
    device = choose_device(device_name)

    click.echo(f'Loading networks from "{network_path}"...')
    G, class_names = load_generator_and_class_names(network_path, device)

    def plan(names):
        make_outdir(outdir)
        check_targets([os.path.join(outdir, name) for name in names], [network_path, projected_w], overwrite)

    with torch.no_grad(), write_errors_as_one_line():
        if mode == 'projected-w':
            ws = load_ws(projected_w, G, device)
            plan(['grid.png'] if grid else [f'proj{i:02d}.png' for i in range(len(ws))])
            with progress_bar(len(ws)) as progress:
                write_images(counted(render_ws(G, ws, noise_mode, batch_size), progress), outdir, grid)
        elif mode == 'seeds' and class_idx == 'all':
            seeds = list(dict.fromkeys(seeds))
            plan(['grid.png'])
            with progress_bar(len(seeds) * max(G.c_dim, 1)) as progress:
                image = class_grid(G, seeds, truncation_psi, truncation_cutoff, noise_mode, batch_size, device, progress)
            names = class_names[:G.c_dim] if class_names is not None and len(class_names) >= G.c_dim else None
            if names is not None:
                image = name_rows(image, names, image.shape[0] // G.c_dim)
            write_png(os.path.join(outdir, 'grid.png'), image)
            rows = 'class 0 at the top' if names is None else f'named on the left ({", ".join(names)})'
            click.echo(f'grid.png: {G.c_dim} rows, {rows}; {len(seeds)} columns, seeds {seeds[0]}..{seeds[-1]}')
        elif mode == 'seeds':
            seeds = list(dict.fromkeys(seeds))
            labels = make_labels(G, class_idx, min(batch_size, len(seeds)), device)
            plan(['grid.png'] if grid else [f'seed{seed:04d}.png' for seed in seeds])
            rendered = render_seeds(G, seeds, labels, truncation_psi, truncation_cutoff, noise_mode, batch_size, device)
            with progress_bar(len(seeds)) as progress:
                write_images(counted(rendered, progress), outdir, grid)
        else:
            styles = coarse_styles(G.num_ws) if styles is None else styles
            bad = [layer for layer in styles if layer >= G.num_ws]
            if bad:
                raise click.BadParameter(f'layer {bad[0]} does not exist; this network has ws 0..{G.num_ws - 1}',
                                         param_hint='--styles')
            labels = make_labels(G, class_idx, batch_size, device)
            pairs = mixing_pairs(row_seeds, col_seeds)
            plan(['grid.png'] + ([f'{row}-{col}.png' for row, col in pairs] if individual else []))
            with progress_bar(len(pairs)) as progress:
                images = style_mix(G, pairs, styles, labels, truncation_psi, truncation_cutoff, noise_mode, batch_size,
                                   device, progress)
            write_png(os.path.join(outdir, 'grid.png'), style_mix_grid(images, row_seeds, col_seeds))
            if individual:
                for (row, col), image in images.items():
                    write_png(os.path.join(outdir, f'{row}-{col}.png'), image)
    click.echo(f'Done; images are in {outdir}')

if __name__ == '__main__':
    generate_images()  # pylint: disable=no-value-for-parameter
