"""Benchmark G and D: forward and forward+backward time and peak memory, skip vs squeeze r=4/8/16, per resolution."""

# Usage:  python bench/networks.py --resolutions 32,256 --device cpu
#         python bench/networks.py --resolutions 32,256,1024 --device cuda --batch 8
# Each (architecture, resolution) runs in a fresh child process, so peak memory is that config's own:
# on CUDA torch.cuda.max_memory_allocated, on CPU the growth of peak RSS over the RSS after building.
# Networks use the preset of each resolution (32: cifar, 256: paper256, 512: paper512, 1024: paper1024),
# in training mode (noise_mode='random', unfused modulated conv), fp32 on CPU and the presets' fp16 on CUDA.

import json
import os
import resource
import subprocess
import sys
import time

import click

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESET_OF_RESOLUTION = {32: 'cifar', 64: 'paper256', 128: 'paper256', 256: 'paper256', 512: 'paper512',
                        1024: 'paper1024'}
ARCHS = {'skip': ('skip', None), 'squeeze4': ('squeeze', 4), 'squeeze8': ('squeeze', 8), 'squeeze16': ('squeeze', 16)}

#----------------------------------------------------------------------------

def _rss_bytes():
    with open('/proc/self/statm', encoding='ascii') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def _peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB.


def _timed(fn, repeats, device):
    """Median seconds of `repeats` calls after one warm-up call."""
    import torch  # pylint: disable=import-outside-toplevel
    fn()
    times = []
    for _ in range(repeats):
        if device == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def conv_gmacs_per_image(module, run):
    """Multiply-accumulates of every conv layer per image, in billions (weight numel x pixels it slides over).

    A timing-free cost measure (FIR resampling filters and affines excluded), useful where timings are noisy.
    """
    total = []
    def hook(layer, inputs, output):
        del inputs
        up = getattr(layer, 'up', 1)  # A 2x upsampling conv is a strided transposed conv over the input pixels.
        total.append(layer.weight.numel() * output.shape[-2] * output.shape[-1] * output.shape[0] // up ** 2)
    hooks = [m.register_forward_hook(hook) for m in module.modules()
             if getattr(m, 'weight', None) is not None and m.weight.ndim == 4]
    batch = run()
    for h in hooks:
        h.remove()
    return sum(total) / batch / 1e9


def measure(arch, resolution, batch, repeats, device):
    """One config, in this process: dict of parameter counts, times (s) and peak memory (MiB) per pass."""
    import torch  # pylint: disable=import-outside-toplevel
    from training.networks import Discriminator, Generator  # pylint: disable=import-outside-toplevel
    from training.cli.summary import preset_networks_kwargs  # pylint: disable=import-outside-toplevel
    from torch_utils import misc  # pylint: disable=import-outside-toplevel
    from torch_utils.ops import paths as op_paths  # pylint: disable=import-outside-toplevel

    misc.set_tf32(False)  # As training runs by default (--allow-tf32=0).
    g_arch, ratio = ARCHS[arch]
    squeeze = dict(squeeze_ratio=ratio or 8) if g_arch == 'squeeze' else {}
    g_kwargs, d_kwargs = preset_networks_kwargs(PRESET_OF_RESOLUTION[resolution], resolution, g_arch=g_arch, **squeeze)
    torch.manual_seed(0)
    G = Generator(**g_kwargs).to(device).train().requires_grad_(True)
    D = Discriminator(**d_kwargs).to(device).train().requires_grad_(True)
    force_fp32 = (device == 'cpu')
    z = torch.randn([batch, G.z_dim], device=device)
    c = torch.zeros([batch, 0], device=device)
    img = torch.randn([batch, 3, resolution, resolution], device=device)

    passes = {
        'G_fwd': lambda: G(z, c, force_fp32=force_fp32),
        'G_fwd_bwd': lambda: G(z, c, force_fp32=force_fp32).square().mean().backward(),
        'D_fwd': lambda: D(img, c, force_fp32=force_fp32),
        'D_fwd_bwd': lambda: D(img.requires_grad_(True), c, force_fp32=force_fp32).sum().backward(),
    }
    result = dict(arch=arch, resolution=resolution, batch=batch, device=device, tf32=False, ops=op_paths.op_paths(device),
                  G_params=sum(p.numel() for p in G.parameters()), D_params=sum(p.numel() for p in D.parameters()))
    with torch.no_grad():
        result['G_GMACs'] = conv_gmacs_per_image(G, lambda: G(z, c, force_fp32=force_fp32).shape[0])
        result['D_GMACs'] = conv_gmacs_per_image(D, lambda: D(img, c, force_fp32=force_fp32).shape[0])
    for name, fn in passes.items():
        if device == 'cuda':
            torch.cuda.reset_peak_memory_stats()
        rss_before = _rss_bytes()
        result[f'{name}_s'] = _timed(fn, repeats, device)
        peak = torch.cuda.max_memory_allocated() if device == 'cuda' else max(_peak_rss_bytes() - rss_before, 0)
        result[f'{name}_MiB'] = peak / 2 ** 20
        G.zero_grad(set_to_none=True)
        D.zero_grad(set_to_none=True)
    return result


def _run_child(arch, resolution, batch, repeats, device, threads):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    code = (f'import json, torch, sys; sys.path.insert(0, {REPO!r}); torch.set_num_threads({threads}); '
            f'from bench.networks import measure; '
            f'print(json.dumps(measure({arch!r}, {resolution}, {batch}, {repeats}, {device!r})))')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ['no output'])[-1]
        raise click.ClickException(f'{arch} at {resolution}x{resolution} failed: {tail}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def format_rows(results):
    header = ('| res | arch | G params | G conv GMACs/img | G fwd s | G fwd+bwd s | G peak MiB | D params | D fwd s '
              '| D fwd+bwd s | D peak MiB |\n|---|---|---|---|---|---|---|---|---|---|---|')
    rows = [f'| {r["resolution"]} | {r["arch"]} | {r["G_params"] / 1e6:.2f}M | {r["G_GMACs"]:.2f} | {r["G_fwd_s"]:.3f} | '
            f'{r["G_fwd_bwd_s"]:.3f} | {r["G_fwd_bwd_MiB"]:.0f} | {r["D_params"] / 1e6:.2f}M | {r["D_fwd_s"]:.3f} | '
            f'{r["D_fwd_bwd_s"]:.3f} | {r["D_fwd_bwd_MiB"]:.0f} |' for r in results]
    return '\n'.join([header] + rows)

#----------------------------------------------------------------------------

def _int_list(ctx, param, value):
    del ctx
    try:
        values = [int(v) for v in value.split(',') if v]
    except ValueError:
        raise click.BadParameter(f'{value!r} is not a comma-separated list of integers', param=param) from None
    bad = [v for v in values if v not in PRESET_OF_RESOLUTION]
    if bad:
        raise click.BadParameter(f'{bad[0]} has no preset; accepted: {", ".join(map(str, PRESET_OF_RESOLUTION))}',
                                 param=param)
    return values


@click.command()
@click.option('--resolutions', default='32,256', show_default=True, callback=_int_list, help='Comma-separated.')
@click.option('--archs', default=','.join(ARCHS), show_default=True, help=f'Comma-separated from {", ".join(ARCHS)}.')
@click.option('--batch', type=click.IntRange(min=1), default=4, show_default=True)
@click.option('--repeats', type=click.IntRange(min=1), default=3, show_default=True, help='Timed calls (median).')
@click.option('--device', type=click.Choice(['cpu', 'cuda']), default='cpu', show_default=True)
@click.option('--threads', type=click.IntRange(min=1), default=2, show_default=True, help='CPU threads per run.')
@click.option('--json-out', type=click.Path(dir_okay=False), default=None, help='Also write the results as JSON.')
def main(resolutions, archs, batch, repeats, device, threads, json_out):
    """Time G and D per synthesis architecture and resolution; print a markdown table."""
    archs = [a for a in archs.split(',') if a]
    unknown = [a for a in archs if a not in ARCHS]
    if unknown:
        raise click.BadParameter(f'{unknown[0]!r}; accepted: {", ".join(ARCHS)}', param_hint='--archs')
    results = []
    for resolution in resolutions:
        for arch in archs:
            results.append(_run_child(arch, resolution, batch, repeats, device, threads))
            click.echo(f'{arch} {resolution}: G fwd+bwd {results[-1]["G_fwd_bwd_s"]:.3f} s', err=True)
    ops = '; '.join(f'{name}: {path}' for name, path in results[0]['ops'].items()) if results else 'none run'
    click.echo(f'Ops on {device}: {ops}; TF32 off')
    click.echo(format_rows(results))
    if json_out:
        import dnnlib  # pylint: disable=import-outside-toplevel
        with dnnlib.util.atomic_write(json_out, mode='w') as f:
            json.dump(results, f, indent=2)


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
