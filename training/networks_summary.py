"""Parameter counts of G and D for a preset, per block: `python -m training.networks --summary --cfg paper256 --g-arch squeeze`."""

import json
import os
import re

import click
import torch

from training.networks_discriminator import Discriminator
from training.networks_generator import SYNTHESIS_BLOCKS, Generator
from training.networks_squeeze import SQUEEZE_ABLATIONS

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs')

#----------------------------------------------------------------------------

def load_preset(cfg):
    """The preset dict of configs/<cfg>.json (or of a .json path)."""
    path = cfg if cfg.endswith('.json') else os.path.join(CONFIG_DIR, f'{cfg}.json')
    if not os.path.isfile(path):
        names = sorted(name[:-5] for name in os.listdir(CONFIG_DIR) if name.endswith('.json'))
        raise click.BadParameter(f'no preset {path}; accepted: {", ".join(names)} or a path to a .json file',
                                 param_hint='--cfg')
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def preset_resolution(cfg):
    """The resolution a preset is named for (paper256 -> 256), or None."""
    match = re.search(r'(\d+)$', os.path.splitext(os.path.basename(cfg))[0])
    return int(match.group(1)) if match else None


def network_kwargs(preset, resolution, g_arch, squeeze_ratio=8, squeeze_ablation='none', d_arch=None):
    """(G kwargs, D kwargs) for a preset, as stylegan2-ada-pytorch's train.py builds them (channel_base = fmaps * 32768)."""
    fmaps = preset['fmaps']
    if fmaps == 'auto':
        fmaps = 1 if resolution >= 512 else 0.5  # stylegan2-ada-pytorch's --cfg=auto rule.
    mbstd_group = preset.get('mbstd_group', 4)
    synthesis_kwargs = dict(channel_base=int(fmaps * 32768), channel_max=preset['cmax'],
                            num_fp16_res=preset['num_fp16_res'], conv_clamp=preset['conv_clamp'], architecture=g_arch)
    if g_arch == 'squeeze':
        synthesis_kwargs.update(squeeze_ratio=squeeze_ratio, squeeze_ablation=squeeze_ablation)
    g_kwargs = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution, img_channels=3,
                    mapping_kwargs=dict(num_layers=preset['map']), synthesis_kwargs=synthesis_kwargs)
    d_kwargs = dict(c_dim=0, img_resolution=resolution, img_channels=3, architecture=d_arch or preset['d_arch'],
                    channel_base=int(fmaps * 32768), channel_max=preset['cmax'], num_fp16_res=preset['num_fp16_res'],
                    conv_clamp=preset['conv_clamp'],
                    epilogue_kwargs=dict(mbstd_group_size=None if mbstd_group == 'auto' else mbstd_group))
    return g_kwargs, d_kwargs


def count_params(module):
    """Number of trainable and frozen parameters (buffers such as noise_const and w_avg excluded)."""
    return sum(p.numel() for p in module.parameters())


def block_rows(module, prefix=''):
    """(name, resolution, channels, ws, params) for each block of G (mapping, b4..bN) or D (bN..b4, mapping)."""
    rows = []
    children = list(module.synthesis.named_children()) if hasattr(module, 'synthesis') else []
    if hasattr(module, 'synthesis'):
        rows.append(('mapping', '', '', '', count_params(module.mapping)))
    for name, block in children + list(module.named_children()):
        if name in ('synthesis', 'mapping') or not hasattr(block, 'resolution'):
            continue
        res = block.resolution
        width = getattr(block, 'squeeze_channels', None)
        out = next(p for n, p in block.named_parameters() if n.endswith('weight') and p.ndim == 4).shape[0]
        channels = f'{out}' + (f' (f_s {width})' if width is not None and block.in_channels else '')
        ws = ''  # Ws this block owns, so the column sums to num_ws (a ToRGB shares the next block's first w).
        if hasattr(block, 'num_conv'):
            ws = block.num_conv + (block.num_torgb if block.is_last else 0)
        rows.append((prefix + name, f'{res}x{res}', channels, ws, count_params(block)))
    if not hasattr(module, 'synthesis') and hasattr(module, 'mapping'):
        rows.append(('mapping', '', '', '', count_params(module.mapping)))
    return rows


def format_table(title, rows, total):
    lines = [f'{title}', f'  {"block":<10} {"res":>9} {"channels":>14} {"ws":>4} {"params":>12}']
    for name, res, channels, ws, params in rows:
        lines.append(f'  {name:<10} {res:>9} {channels:>14} {str(ws):>4} {params:>12,}')
    lines.append(f'  {"total":<10} {"":>9} {"":>14} {"":>4} {total:>12,}  ({total / 1e6:.2f}M)')
    return '\n'.join(lines)


def summarize(g_kwargs, d_kwargs):
    """The printed summary: per-block tables and totals for G and D."""
    with torch.random.fork_rng(devices=[]):
        G = Generator(**g_kwargs)
        D = Discriminator(**d_kwargs)
    synthesis = g_kwargs['synthesis_kwargs']
    arch = synthesis['architecture'] + (f', squeeze_ratio={synthesis["squeeze_ratio"]}, '
                                        f'squeeze_ablation={synthesis["squeeze_ablation"]}'
                                        if synthesis['architecture'] == 'squeeze' else '')
    res = g_kwargs['img_resolution']
    g_title = f'G ({arch}; {res}x{res}, channel_base={synthesis["channel_base"]}, num_ws={G.num_ws})'
    d_title = f'D ({d_kwargs["architecture"]})'
    return '\n\n'.join([format_table(g_title, block_rows(G), count_params(G)),
                        format_table(d_title, block_rows(D), count_params(D)),
                        f'G params: {count_params(G):,}\nD params: {count_params(D):,}'])

#----------------------------------------------------------------------------

@click.command()
@click.option('--summary', is_flag=True, required=True, help='Print parameter counts of G and D (the only action).')
@click.option('--cfg', default='paper256', show_default=True, help='Preset name in configs/ or a .json path.')
@click.option('--resolution', type=int, default=None, help='Image resolution [default: from the preset name].')
@click.option('--g-arch', type=click.Choice(list(SYNTHESIS_BLOCKS)), default='skip', show_default=True)
@click.option('--squeeze-ratio', type=click.FloatRange(min=1), default=8, show_default=True)
@click.option('--squeeze-ablation', type=click.Choice(list(SQUEEZE_ABLATIONS)), default='none', show_default=True)
@click.option('--d-arch', type=click.Choice(['orig', 'skip', 'resnet']), default=None, help='[default: the preset\'s]')
def main(summary, cfg, resolution, g_arch, squeeze_ratio, squeeze_ablation, d_arch):
    """Print G and D parameter counts for a preset, with a per-block table."""
    del summary
    preset = load_preset(cfg)
    if resolution is None:
        resolution = preset_resolution(cfg)
        if resolution is None:
            raise click.UsageError(f'--cfg {cfg} does not name a resolution; pass --resolution')
    if resolution < 4 or resolution & (resolution - 1):
        raise click.BadParameter(f'{resolution} is not a power of two >= 4', param_hint='--resolution')
    ratio = int(squeeze_ratio) if float(squeeze_ratio).is_integer() else squeeze_ratio
    g_kwargs, d_kwargs = network_kwargs(preset, resolution, g_arch, ratio, squeeze_ablation, d_arch)
    click.echo(summarize(g_kwargs, d_kwargs))

#----------------------------------------------------------------------------
