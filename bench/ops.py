"""Times the custom ops (CUDA kernel, reference, and a naive composition) at StyleGAN2 shapes: ms and effective GB/s.

    python bench/ops.py                      # CUDA if available, else CPU with a small batch
    python bench/ops.py --device=cpu --batch=2 --reps=5
On CUDA it runs with SQUEEZEGAN_OPS=cuda unless that is set: the 'cuda' rows are the kernels or the script
stops with an error naming the op, never the reference in disguise. The first line names each op's path.
"""

import os
import time

import click
import torch

from torch_utils import custom_ops
from torch_utils import misc
from torch_utils.ops import bias_act, conv2d_resample, upfirdn2d
from torch_utils.ops import paths as op_paths

F = torch.nn.functional

# (channels, resolution) of StyleGAN2 layers: the 512-channel low-res blocks and the wide high-res ones.
SHAPES = [(512, 8), (512, 16), (512, 32), (128, 128), (64, 256)]

#----------------------------------------------------------------------------
# Naive compositions: what one would write without the ops (each step a fresh tensor).

def naive_bias_lrelu(x, b):
    y = x + b.reshape(1, -1, 1, 1)
    y = torch.where(y >= 0, y, y * 0.2)
    return (y * 2 ** 0.5).clamp(-256, 256)


def naive_upsample2d(x, f2d):
    n, c, h, w = x.shape
    big = torch.zeros([n, c, h * 2, w * 2], dtype=x.dtype, device=x.device)
    big[:, :, ::2, ::2] = x
    big = F.pad(big, [2, 1, 2, 1])
    weight = (f2d.flip([0, 1]) * 4).to(x.dtype)[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(big, weight, groups=c)


def naive_downsample2d(x, f2d):
    c = x.shape[1]
    weight = f2d.flip([0, 1]).to(x.dtype)[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(F.pad(x, [1, 1, 1, 1]), weight, groups=c)[:, :, ::2, ::2]

#----------------------------------------------------------------------------

def _time_ms(func, device, reps):
    """Fastest wall time of func() in milliseconds over `reps` calls, after two warm-up calls.

    The minimum, not the median: on a shared machine the other processes only ever add time.
    """
    for _ in range(2):
        func()
    times = []
    for _ in range(reps):
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        func()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def _forward_backward(op, x):
    def run():
        x.grad = None
        y = op(x)
        y.backward(torch.ones_like(y))
    return run


def _cases(device, dtype, batch, channels, res):
    """(name, {impl: op}, bytes moved forward, bytes moved forward+backward) for one shape."""
    elem = torch.finfo(dtype).bits // 8
    numel = batch * channels * res * res
    b = torch.randn(channels, device=device, dtype=dtype)
    f = upfirdn2d.setup_filter([1, 3, 3, 1], device=device)
    w = torch.randn(channels, channels, 3, 3, device=device, dtype=dtype) * 0.05
    return [
        ('bias_act lrelu', {
            'cuda': lambda x: bias_act.bias_act(x, b, act='lrelu', clamp=256, impl='cuda'),
            'ref': lambda x: bias_act.bias_act(x, b, act='lrelu', clamp=256, impl='ref'),
            'naive': lambda x: naive_bias_lrelu(x, b)},
         2 * numel * elem, 5 * numel * elem),
        ('upsample2d x2', {
            'cuda': lambda x: upfirdn2d.upsample2d(x, f, impl='cuda'),
            'ref': lambda x: upfirdn2d.upsample2d(x, f, impl='ref'),
            'naive': lambda x: naive_upsample2d(x, f)},
         5 * numel * elem, 10 * numel * elem),
        ('downsample2d /2', {
            'cuda': lambda x: upfirdn2d.downsample2d(x, f, impl='cuda'),
            'ref': lambda x: upfirdn2d.downsample2d(x, f, impl='ref'),
            'naive': lambda x: naive_downsample2d(x, f)},
         1.25 * numel * elem, 2.5 * numel * elem),
        ('conv2d_resample up2 3x3', {  # Uses whichever upfirdn2d the device gets.
            ('cuda' if device.type == 'cuda' else 'ref'): lambda x: conv2d_resample.conv2d_resample(x, w, f, up=2, padding=1, flip_weight=False)},
         None, None),
    ]


@click.command()
@click.option('--device', type=click.Choice(['cuda', 'cpu']), default=None, help='Default: cuda when available.')
@click.option('--batch', type=click.IntRange(min=1), default=None, help='Default: 32 on CUDA, 2 on CPU.')
@click.option('--dtype', type=click.Choice(['float32', 'float16']), default='float32', show_default=True)
@click.option('--reps', type=click.IntRange(min=1), default=10, show_default=True)
@click.option('--max-res', type=click.IntRange(min=8), default=256, show_default=True, help='Skip larger shapes.')
def main(device, batch, dtype, reps, max_res):
    """Time each op forward and forward+backward; CUDA kernels only run on a CUDA device."""
    device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise click.BadParameter('no CUDA device is available; use --device=cpu', param_hint='--device')
    if device.type == 'cuda':
        os.environ.setdefault(custom_ops.OPS_ENV, 'cuda')  # The 'cuda' rows are the kernels, or this stops.
    batch = batch or (32 if device.type == 'cuda' else 2)
    dtype = getattr(torch, dtype)
    impls = ['cuda', 'ref', 'naive'] if device.type == 'cuda' else ['ref', 'naive']
    misc.set_tf32(False)  # The reference paths' convolutions as training runs them (--allow-tf32 defaults to 0).
    print(f'device={torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"} '
          f'torch={torch.__version__} batch={batch} dtype={dtype} threads={torch.get_num_threads()} tf32=off')
    print(op_paths.describe(device))  # What the 'cuda' rows ran (checked again below, per op).
    print(f'{"op":<24} {"shape":<14} {"impl":<6} {"fwd ms":>9} {"fwd GB/s":>9} {"f+b ms":>9} {"f+b GB/s":>9}')
    for channels, res in SHAPES:
        if res > max_res:
            continue
        x = torch.randn(batch, channels, res, res, device=device, dtype=dtype, requires_grad=True)
        for name, ops, fwd_bytes, fb_bytes in _cases(device, dtype, batch, channels, res):
            for impl in impls:
                op = ops.get(impl)
                if op is None:
                    continue
                with torch.no_grad():
                    fwd = _time_ms(lambda: op(x), device, reps)
                fb = _time_ms(_forward_backward(op, x), device, reps)
                rate = lambda nbytes, ms: f'{nbytes / ms / 1e6:9.1f}' if nbytes else f'{"-":>9}'
                print(f'{name:<24} {f"{channels}x{res}^2":<14} {impl:<6} {fwd:9.3f} {rate(fwd_bytes, fwd)} {fb:9.3f} {rate(fb_bytes, fb)}', flush=True)


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
