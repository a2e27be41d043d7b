"""Project a target image into W: find the w (and noise maps) whose image matches it, as in StyleGAN2 Section 5."""

import copy
import math
import os

import click
import numpy as np
import PIL.Image
import torch

import dnnlib
import generate
from metrics import detectors
from training import networks

#----------------------------------------------------------------------------
# Defaults of stylegan2-ada-pytorch's projector.py, so that results and habits carry over.

NUM_STEPS = 1000                # Optimisation steps.
W_AVG_SAMPLES = 10000           # z samples for the mean w (the starting point) and the spread of W.
W_AVG_SEED = 123                # The mean w does not depend on --seed.
INITIAL_LEARNING_RATE = 0.1     # Peak Adam learning rate.
INITIAL_NOISE_FACTOR = 0.05     # Noise added to w at step 0, as a fraction of the spread of W.
LR_RAMPUP_LENGTH = 0.05         # Fraction of the steps over which the learning rate ramps up linearly...
LR_RAMPDOWN_LENGTH = 0.25       # ... and the final fraction over which it ramps down (cosine).
NOISE_RAMP_LENGTH = 0.75        # Fraction of the steps over which the noise added to w decays to zero.
REGULARIZE_NOISE_WEIGHT = 1e5   # Weight of the noise autocorrelation penalty.
DETECTOR_RESOLUTION = 256       # Larger images are area-downsampled to this before the VGG16 features.
VIDEO_FPS = 10

#----------------------------------------------------------------------------
# Target image.


def read_image(path):
    """The image in `path`, decoded; an unreadable file is one line naming --target."""
    try:
        with PIL.Image.open(path) as image:
            image.load()
            return image.copy()
    except (OSError, ValueError, PIL.Image.DecompressionBombError) as error:
        raise click.BadParameter(f'{path} is not a readable image ({error})', param_hint='--target') from error


def fit_target(image, shape, channels):
    """Center-crop `image` to the aspect of `shape` (height, width) and resize it to that shape; returns HWC uint8."""
    image = image.convert('L' if channels == 1 else 'RGB')
    width, height = image.size
    out_height, out_width = shape
    crop_width, crop_height = min(width, height * out_width // out_height), min(height, width * out_height // out_width)
    left, top = (width - crop_width) // 2, (height - crop_height) // 2
    image = image.crop((left, top, left + crop_width, top + crop_height))
    image = image.resize((out_width, out_height), PIL.Image.LANCZOS)
    array = np.asarray(image, dtype=np.uint8)
    return array[:, :, np.newaxis] if array.ndim == 2 else array

#----------------------------------------------------------------------------
# The objective: VGG16 LPIPS-style feature distance plus the noise regulariser.


def detector_input(images):
    """NCHW float images in [0, 255] -> what the VGG16 detector takes: RGB, the longer side at most 256 (area resize)."""
    if images.shape[1] == 1:
        images = images.repeat([1, 3, 1, 1])
    height, width = images.shape[2:]
    if max(height, width) > DETECTOR_RESOLUTION:
        size = (height * DETECTOR_RESOLUTION // max(height, width), width * DETECTOR_RESOLUTION // max(height, width))
        images = torch.nn.functional.interpolate(images, size=size, mode='area')
    return images


def lpips_features(vgg16, images):
    """LPIPS embedding of NCHW float images in [0, 255] (the public vgg16.pt calling convention)."""
    return vgg16(detector_input(images), resize_images=False, return_lpips=True)


def feature_distance(features, target_features):
    """Squared L2 distance between LPIPS embeddings, summed over the batch."""
    return (features - target_features).square().sum()


def noise_regularization(noise_maps):
    """Sum over maps and pyramid levels of the squared one-pixel autocorrelations (StyleGAN2 Section 5).

    Each [H, W] map contributes (mean n*shift_x(n))^2 + (mean n*shift_y(n))^2 with circular shifts, then is
    2x2 average-pooled and scored again, down to 8x8 (a map of 8x8 or smaller is scored once). Like both
    official projectors, the pooled maps are not rescaled to unit variance.
    """
    penalty = 0
    for noise in noise_maps:
        noise = noise.reshape([1, 1, noise.shape[-2], noise.shape[-1]])
        while True:
            penalty = penalty + (noise * torch.roll(noise, shifts=1, dims=3)).mean().square()
            penalty = penalty + (noise * torch.roll(noise, shifts=1, dims=2)).mean().square()
            if noise.shape[2] <= 8:
                break
            noise = torch.nn.functional.avg_pool2d(noise, kernel_size=2)
    return penalty


@torch.no_grad()
def normalize_noise_(noise_maps):
    """Re-normalise each noise map to zero mean and unit variance, in place."""
    for noise in noise_maps:
        noise -= noise.mean()
        noise *= noise.square().mean().rsqrt()

#----------------------------------------------------------------------------
# Schedules over t = step / num_steps.


def learning_rate(t, initial=INITIAL_LEARNING_RATE, rampup=LR_RAMPUP_LENGTH, rampdown=LR_RAMPDOWN_LENGTH):
    """Linear ramp-up over the first `rampup`, cosine ramp-down over the last `rampdown` of the steps."""
    down = min(1.0, (1.0 - t) / rampdown)
    down = 0.5 - 0.5 * math.cos(down * math.pi)
    return initial * down * min(1.0, t / rampup)


def w_noise_scale(t, w_std, initial_factor=INITIAL_NOISE_FACTOR, ramp=NOISE_RAMP_LENGTH):
    """Standard deviation of the noise added to w: quadratic decay to zero at t = ramp."""
    return w_std * initial_factor * max(0.0, 1.0 - t / ramp) ** 2

#----------------------------------------------------------------------------
# Projection.


@torch.no_grad()
def w_statistics(G, num_samples=W_AVG_SAMPLES, device='cpu', label=None):
    """(mean w as [1, 1, w_dim], spread of W = sqrt(E||w - mean||^2)) from `num_samples` random z; a conditional G
    maps them with `label` ([1, c_dim], the class projected into)."""
    z = torch.from_numpy(np.random.RandomState(W_AVG_SEED).randn(num_samples, G.z_dim)).to(device)
    c = torch.zeros([num_samples, G.c_dim], device=device) if label is None else label.to(device).expand(num_samples, -1)
    w = G.mapping(z, c)[:, :1, :].to(torch.float32)
    w_avg = w.mean(dim=0, keepdim=True)
    w_std = ((w - w_avg).square().sum() / num_samples).sqrt().item()
    return w_avg, w_std


def synthesis_kwargs(device):
    """Synthesis arguments: the constant noise maps (those optimised); fp32 on CPU, where fp16 is only emulated."""
    return dict(noise_mode='const', force_fp32=torch.device(device).type == 'cpu')


def noise_buffers(synthesis):
    """The per-layer constant noise maps of a synthesis network (buffers named *noise_const)."""
    return [buf for name, buf in synthesis.named_buffers() if name.endswith('noise_const')]


def project(G, target, vgg16, *,
    num_steps               = NUM_STEPS,                # Optimisation steps.
    w_avg_samples           = W_AVG_SAMPLES,            # z samples for the starting w and the spread of W.
    initial_learning_rate   = INITIAL_LEARNING_RATE,    # Peak learning rate.
    initial_noise_factor    = INITIAL_NOISE_FACTOR,     # Noise added to w at step 0, times the spread of W.
    lr_rampup_length        = LR_RAMPUP_LENGTH,         # Fraction of steps of learning-rate ramp-up.
    lr_rampdown_length      = LR_RAMPDOWN_LENGTH,       # Fraction of steps of learning-rate ramp-down.
    noise_ramp_length       = NOISE_RAMP_LENGTH,        # Fraction of steps over which the w noise decays.
    regularize_noise_weight = REGULARIZE_NOISE_WEIGHT,  # Weight of noise_regularization().
    seed                    = 0,                        # Seeds the noise maps and the noise added to w.
    report                  = None,                     # Called as report(step, distance, loss) after each step.
    label                   = None,                     # [1, c_dim] class of a conditional G (starting w, spread).
):
    """Optimise one w (broadcast to every layer) and the noise maps so that G's image matches `target`.

    `target` is a [C, H, W] uint8 tensor at G's resolution. G is not changed: the work is done on a copy.
    Returns EasyDict(w_steps=[num_steps, num_ws, w_dim] w after each step, distances=[num_steps] floats,
    G=the copy, its noise maps as optimised).
    """
    device = target.device
    G = copy.deepcopy(G).eval().requires_grad_(False).to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    w_avg, w_std = w_statistics(G, w_avg_samples, device, label)
    target_features = lpips_features(vgg16, target.unsqueeze(0).to(torch.float32))

    noise_maps = noise_buffers(G.synthesis)
    with torch.no_grad():
        for noise in noise_maps:
            noise.copy_(torch.randn(noise.shape, generator=generator, device=device))
    w_opt = w_avg.clone().requires_grad_(True)
    params = [w_opt] + [noise.requires_grad_(True) for noise in noise_maps]
    optimizer = torch.optim.Adam(params, betas=(0.9, 0.999), lr=initial_learning_rate)

    w_steps, distances = [], []
    for step in range(num_steps):
        t = step / num_steps
        for group in optimizer.param_groups:
            group['lr'] = learning_rate(t, initial_learning_rate, lr_rampup_length, lr_rampdown_length)
        w_noise = torch.randn(w_opt.shape, generator=generator, device=device)
        w_noise = w_noise * w_noise_scale(t, w_std, initial_noise_factor, noise_ramp_length)
        ws = (w_opt + w_noise).repeat([1, G.num_ws, 1])
        images = (G.synthesis(ws, **synthesis_kwargs(device)) + 1) * (255 / 2)
        distance = feature_distance(lpips_features(vgg16, images), target_features)
        loss = distance + regularize_noise_weight * noise_regularization(noise_maps)
        grads = torch.autograd.grad(loss, params)  # Only w and the noise maps; the detector is left untouched.
        for param, grad in zip(params, grads):
            param.grad = grad
        optimizer.step()
        normalize_noise_(noise_maps)

        w_steps.append(w_opt.detach()[0].repeat([G.num_ws, 1]))
        distances.append(distance.item())
        if report is not None:
            report(step, distances[-1], loss.item())
    for noise in noise_maps:
        noise.requires_grad_(False)
    return dnnlib.EasyDict(w_steps=torch.stack(w_steps), distances=distances, G=G)

#----------------------------------------------------------------------------
# Command line.


def video_writer():
    """imageio with its ffmpeg plugin, needed for --save-video only."""
    try:
        import imageio  # pylint: disable=import-outside-toplevel
        import imageio_ffmpeg  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        raise click.UsageError('--save-video needs an optional video writer; install it with '
                               'pip install .[video] (imageio and imageio-ffmpeg), or drop --save-video') from None
    return imageio


def check_detector_dir(detector_dir):
    """--detector-dir, if given, must be an existing folder."""
    if detector_dir is None:
        return None
    detector_dir = os.path.expanduser(detector_dir)
    if not os.path.isdir(detector_dir):
        raise click.BadParameter(f'{detector_dir} is not a folder; give the folder holding vgg16.pt',
                                 param_hint='--detector-dir')
    return detector_dir


def load_vgg16(device, detector_dir):
    try:
        vgg16, _digest = detectors.get_detector(detectors.VGG16, device=device, detector_dir=detector_dir)
    except detectors.DetectorUnavailableError as error:
        raise click.ClickException(str(error)) from error
    return vgg16


def print_progress(num_steps):
    """report() for project(): one plain line at the first and last step and every num_steps/20 steps."""
    every = max(1, num_steps // 20)

    def report(step, distance, loss):
        if step == 0 or (step + 1) % every == 0 or step + 1 == num_steps:
            click.echo(f'step {step + 1:{len(str(num_steps))}d}/{num_steps}: dist {distance:<8.4f} loss {loss:<8.4f}')
        if not math.isfinite(loss):
            raise click.ClickException(f'the projection diverged (loss {loss} at step {step + 1}); nothing was written')
    return report


def write_npz(path, w):
    with dnnlib.util.atomic_write(path, 'wb') as f:
        np.savez(f, w=w)


def write_video(path, imageio, frames):
    """Write HWC uint8 frames as an H.264 video; a failure leaves neither a partial nor a temporary file."""
    tmp_path = os.path.join(os.path.dirname(path), f'.{os.path.basename(path)}.tmp.mp4')
    try:
        with imageio.get_writer(tmp_path, mode='I', fps=VIDEO_FPS, codec='libx264', bitrate='16M') as video:
            for frame in frames:
                video.append_data(frame)
        os.replace(tmp_path, path)
    except OSError as error:  # ffmpeg missing or failing, a full disk, a read-only folder.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise click.ClickException(f'cannot write {path} ({reason}); the other outputs are complete') from error
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def video_frames(G, w_steps, target_image):
    """Target beside the image of each step's w (rendered with the final noise maps), as RGB frames."""
    for w in w_steps:
        with torch.no_grad():
            image = generate.to_uint8(G.synthesis(w.unsqueeze(0), **synthesis_kwargs(w.device)))[0]
        frame = np.concatenate([target_image, image], axis=1)
        yield frame.repeat(3, axis=2) if frame.shape[2] == 1 else frame


@click.command()
@click.option('--network', 'network_path', help='Network: snapshot or official pickle, or weights-only .pt (path or URL)', required=True, metavar='PATH')
@click.option('--target', 'target_path', type=click.Path(exists=True, dir_okay=False), help='Image to project (center-cropped to a square, resized to the network resolution)', required=True, metavar='FILE')
@click.option('--outdir',         help='Where to write projected_w.npz, proj.png and target.png', required=True, metavar='DIR')
@click.option('--num-steps',      type=click.IntRange(min=1), help='Optimisation steps', default=NUM_STEPS, show_default=True)
@click.option('--seed',           type=click.IntRange(min=0, max=generate.MAX_SEED), help='Random seed (noise maps, noise added to w)', default=303, show_default=True)
@click.option('--save-video',     help='Also write proj.mp4, target beside each step (needs imageio and imageio-ffmpeg)', is_flag=True)
@click.option('--device',         'device_name', type=click.Choice(['cuda', 'cpu']), help='Device [default: cuda when available]')
@click.option('--detector-dir',   help=f'Folder holding vgg16.pt (no download) [default: ${detectors.DETECTOR_DIR_ENV}]', metavar='DIR')
@click.option('--class',          'class_idx', type=int, help='Class to project into (conditional networks only)')
@click.option('--overwrite',      help='Replace existing outputs in --outdir', is_flag=True)
def main(network_path, target_path, outdir, num_steps, seed, save_video, device_name, detector_dir, class_idx, overwrite):
    """Project a target image into the W space of a trained generator.

    \b
    python projector.py --network=model.pt --target=face.png --outdir=out
    python generate.py --network=model.pt --projected-w=out/projected_w.npz --outdir=out/render
    """
    imageio = video_writer() if save_video else None
    detector_dir = check_detector_dir(detector_dir)
    generate.check_outdir(outdir)
    device = generate.choose_device(device_name)
    image = read_image(target_path)

    click.echo(f'Loading networks from "{network_path}"...')
    G = generate.load_generator(network_path, device)
    label = generate.make_labels(G, class_idx, 1, device)  # [1, 0] for an unconditional G.
    names = ['projected_w.npz', 'proj.png', 'target.png'] + (['proj.mp4'] if save_video else [])
    paths = {name: os.path.join(outdir, name) for name in names}
    generate.make_outdir(outdir)
    generate.check_targets(list(paths.values()), [network_path, target_path], overwrite)
    vgg16 = load_vgg16(device, detector_dir)

    target_image = fit_target(image, networks.image_shape(G), G.img_channels)
    target = torch.from_numpy(target_image.copy()).permute(2, 0, 1).to(device)
    click.echo(f'Projecting {target_path} in {num_steps} steps...')
    result = project(G, target, vgg16, num_steps=num_steps, seed=seed, report=print_progress(num_steps),
                     label=label if G.c_dim else None)

    projected_w = result.w_steps[-1:]  # [1, num_ws, w_dim], what generate.py --projected-w reads.
    with torch.no_grad():
        proj_image = generate.to_uint8(result.G.synthesis(projected_w, **synthesis_kwargs(device)))[0]
    with generate.write_errors_as_one_line():
        write_npz(paths['projected_w.npz'], projected_w.cpu().numpy())
        generate.write_png(paths['proj.png'], proj_image)
        generate.write_png(paths['target.png'], target_image)
    if save_video:
        click.echo(f'Writing {paths["proj.mp4"]}...')
        write_video(paths['proj.mp4'], imageio, video_frames(result.G, result.w_steps, target_image))
    click.echo(f'Done; final distance {result.distances[-1]:.4f}; outputs are in {outdir}')


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
