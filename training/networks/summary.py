"""Parameter counts of G and D, per block, as `python -m training.cli.summary` prints them."""

import torch

from training.networks.discriminator import Discriminator
from training.networks.generator import Generator

#----------------------------------------------------------------------------

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
        if hasattr(block, 'num_conv_ws'):
            ws = block.num_conv_ws + (block.num_torgb if block.is_last else 0)
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
    """The printed summary: per-block tables and totals for G and D (constructor kwargs, no class_name)."""
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
