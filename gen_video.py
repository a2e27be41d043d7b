"""Render a looping latent-interpolation video: a grid of seeds moving through W, with stylegan3's gen_video.py flags."""

# Each grid cell visits its own `--num-keyframes` seeds in turn; between two keyframes, `--w-frames` frames follow
# a periodic Catmull-Rom (cubic) spline through the keyframes' ws, so the motion has no kinks and the frame after
# the last is the first again: the video loops without a jump. The format follows --output's extension: .mp4
# through imageio + imageio-ffmpeg (pip install .[video]), .gif and .webp through Pillow.

import os
import shutil
import tempfile

import click
import numpy as np
import PIL.Image
import torch

import dnnlib
import generate
from generate import IntList

VIDEO_EXTRA_HINT = 'MP4 needs imageio and imageio-ffmpeg: pip install .[video] (or write .gif / .webp)'
FORMATS = ('.mp4', '.gif', '.webp')

#----------------------------------------------------------------------------


def catmull_rom_loop(keyframes, w_frames):
    """[K, ...] keyframes -> [K * w_frames, ...] frames on a closed Catmull-Rom spline through them.

    Frame k * w_frames is keyframe k exactly; the spline's tangent at each keyframe is half the difference of its
    neighbours (indices taken modulo K), so the path is smooth everywhere, the seam included.
    """
    count = keyframes.shape[0]
    frames = []
    for index in range(count * w_frames):
        k, u = divmod(index, w_frames)
        u = u / w_frames
        p0, p1, p2, p3 = (keyframes[(k + offset) % count] for offset in (-1, 0, 1, 2))
        frames.append(0.5 * (2 * p1 + (p2 - p0) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u ** 2 +
                             (3 * p1 - p0 - 3 * p2 + p3) * u ** 3))
    return torch.stack(frames)


def keyframe_ws(G, seeds, grid_w, grid_h, num_keyframes, labels, truncation_psi):
    """ws [grid_h * grid_w, num_keyframes, num_ws, w_dim]: cell i takes seeds i*K .. i*K+K-1."""
    zs = generate.zs_from_seeds(seeds, G.z_dim, labels.device).to(torch.float32)
    with torch.no_grad():
        ws = G.mapping(zs, labels.expand(len(seeds), -1), truncation_psi=truncation_psi)
    return ws.reshape(grid_h * grid_w, num_keyframes, *ws.shape[1:])


def render_frames(G, cell_ws, grid_w, grid_h, w_frames, noise_mode='const'):
    """Yield the video's frames as HWC uint8 grids."""
    paths = torch.stack([catmull_rom_loop(ws, w_frames) for ws in cell_ws], dim=1)  # [frames, cells, num_ws, w_dim]
    for frame_ws in paths:
        with torch.no_grad():
            images = generate.to_uint8(G.synthesis(frame_ws, noise_mode=noise_mode))
        _, height, width, channels = images.shape
        cells = {divmod(i, grid_w): image for i, image in enumerate(images)}
        yield generate.tile(cells, grid_h, grid_w, height, width, channels)


def parse_grid(text):
    parts = str(text).lower().split('x')
    if len(parts) == 2 and all(part.isdigit() and int(part) > 0 for part in parts):
        return int(parts[0]), int(parts[1])
    raise click.BadParameter(f'{text}: expected WxH with whole numbers >= 1, e.g. 4x2', param_hint='--grid')


def write_video(path, frames, fps):
    """Write the frames to `path` in the format of its extension, through a temporary name."""
    extension = os.path.splitext(path)[1].lower()
    if extension == '.mp4':
        try:
            import imageio  # pylint: disable=import-outside-toplevel  # The optional [video] extra.
            import imageio_ffmpeg  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
        except ImportError:
            raise click.ClickException(f'--output={path}: {VIDEO_EXTRA_HINT}') from None
        with tempfile.TemporaryDirectory() as scratch:  # ffmpeg picks the container by the name it writes to.
            encoded = os.path.join(scratch, 'video.mp4')
            with imageio.get_writer(encoded, format='FFMPEG', fps=fps, codec='libx264', macro_block_size=1) as writer:
                for frame in frames:
                    writer.append_data(frame)
            with open(encoded, 'rb') as source, dnnlib.util.atomic_write(path, 'wb') as f:
                shutil.copyfileobj(source, f)
        return
    images = [PIL.Image.fromarray(frame[:, :, 0] if frame.shape[2] == 1 else frame) for frame in frames]
    with dnnlib.util.atomic_write(path, 'wb') as f:
        images[0].save(f, format='GIF' if extension == '.gif' else 'WEBP', save_all=True, append_images=images[1:],
                       duration=round(1000 / fps), loop=0, **({'lossless': True} if extension == '.webp' else {}))


@click.command()
@click.option('--network', 'network_path', help='Network: snapshot or official pickle, or weights-only .pt', required=True, metavar='PATH')
@click.option('--seeds', type=IntList('seed'), help='Seeds: grid cells x keyframes of them, e.g. 0-31', required=True)
@click.option('--grid', default='1x1', show_default=True, help='Grid of cells as WxH')
@click.option('--num-keyframes', type=click.IntRange(min=2), help='Keyframes per cell [default: seeds / cells]')
@click.option('--w-frames', type=click.IntRange(min=1), default=120, show_default=True, help='Frames between keyframes')
@click.option('--trunc', 'truncation_psi', type=float, callback=generate.finite_psi, default=1, show_default=True, help='Truncation psi')
@click.option('--class', 'class_idx', type=int, help='Class label (conditional networks only)')
@click.option('--fps', type=click.IntRange(min=1), default=60, show_default=True, help='Frames per second')
@click.option('--output', required=True, metavar='FILE', help=f'Video file; the format follows the extension ({", ".join(FORMATS)})')
@click.option('--device', help='cpu or cuda [default: cuda when available]')
def main(network_path, seeds, grid, num_keyframes, w_frames, truncation_psi, class_idx, fps, output, device):
    """Render a looping interpolation video of a grid of seeds.

    \b
    python gen_video.py --network=model.pt --seeds=0-31 --grid=4x2 --output=lerp.mp4
    python gen_video.py --network=model.pt --seeds=0-11 --grid=3x1 --w-frames=30 --class=7 --output=sevens.gif
    """
    grid_w, grid_h = parse_grid(grid)
    extension = os.path.splitext(output)[1].lower()
    if extension not in FORMATS:
        raise click.BadParameter(f'{output}: unknown video format {extension or "(no extension)"}; accepted: '
                                 f'{", ".join(FORMATS)}', param_hint='--output')
    cells = grid_w * grid_h
    if num_keyframes is None:
        if len(seeds) % cells or len(seeds) // cells < 2:
            raise click.BadParameter(f'{len(seeds)} seeds do not split into {cells} cells of 2 or more keyframes; give '
                                     f'a multiple of {cells} seeds, at least {2 * cells}', param_hint='--seeds')
        num_keyframes = len(seeds) // cells
    if len(seeds) != cells * num_keyframes:
        raise click.BadParameter(f'{len(seeds)} seeds, but --grid={grid} with --num-keyframes={num_keyframes} needs '
                                 f'{cells * num_keyframes}', param_hint='--seeds')
    device = generate.choose_device(device)
    G = generate.load_generator(network_path, device)
    labels = generate.make_labels(G, class_idx, 1, device)
    cell_ws = keyframe_ws(G, seeds, grid_w, grid_h, num_keyframes, labels, truncation_psi)
    frames = list(render_frames(G, cell_ws, grid_w, grid_h, w_frames))
    with generate.write_errors_as_one_line():
        write_video(output, frames, fps)
    click.echo(f'Wrote {len(frames)} frames ({grid_w}x{grid_h} cells, {num_keyframes} keyframes each) to {output}')


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
