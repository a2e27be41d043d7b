"""`python -m training.cli.summary --cfg paper256 --g-arch squeeze`: G and D parameter counts for a preset, resolved as
train.py resolves it."""

import os
import re

import click

from training.networks import summary
from training.networks.generator import SYNTHESIS_BLOCKS
from training.networks.squeeze import SQUEEZE_ABLATIONS
from training.cli import config as run_config

#----------------------------------------------------------------------------

def preset_resolution(cfg):
    """The resolution a preset is named for (paper256 -> 256), or None."""
    match = re.search(r'(\d+)$', os.path.splitext(os.path.basename(cfg))[0])
    return int(match.group(1)) if match else None


def constructor_kwargs(network_kwargs, resolution, img_channels=3, c_dim=0):
    """Plain constructor arguments from config kwargs: class_name dropped, the dataset facts added."""
    kwargs = {k: v for k, v in network_kwargs.items() if k != 'class_name'}
    return dict(kwargs, c_dim=c_dim, img_resolution=resolution, img_channels=img_channels)


def preset_networks_kwargs(cfg, resolution, **options):
    """(G, D) constructor kwargs of a preset, resolved by the training path (run_config.preset_network_kwargs)."""
    G_kwargs, D_kwargs = run_config.preset_network_kwargs(cfg, resolution, **options)
    return constructor_kwargs(G_kwargs, resolution), constructor_kwargs(D_kwargs, resolution)


@click.command()
@click.option('--cfg', default='paper256', show_default=True, help='Preset name in configs/ or a .json path.')
@click.option('--resolution', type=int, default=None, help='Image resolution [default: from the preset name].')
@click.option('--g-arch', type=click.Choice(list(SYNTHESIS_BLOCKS)), default='skip', show_default=True)
@click.option('--squeeze-ratio', type=click.FloatRange(min=1), default=8, show_default=True)
@click.option('--squeeze-ablation', type=click.Choice(list(SQUEEZE_ABLATIONS)), default='none', show_default=True)
@click.option('--d-arch', type=click.Choice(['orig', 'skip', 'resnet']), default=None, help='[default: the preset\'s]')
def main(cfg, resolution, g_arch, squeeze_ratio, squeeze_ablation, d_arch):
    """Print G and D parameter counts for a preset, with a per-block table."""
    try:
        run_config.load_preset(cfg)
    except run_config.ConfigError as exc:
        raise click.UsageError(str(exc))
    if resolution is None:
        resolution = preset_resolution(cfg)
        if resolution is None:
            raise click.UsageError(f'--cfg {cfg} does not name a resolution; pass --resolution')
    if resolution < 4 or resolution & (resolution - 1):
        raise click.BadParameter(f'{resolution} is not a power of two >= 4', param_hint='--resolution')
    arch = dict(g_arch=g_arch, d_arch=d_arch)
    if g_arch == 'squeeze':
        ratio = int(squeeze_ratio) if float(squeeze_ratio).is_integer() else squeeze_ratio
        arch.update(squeeze_ratio=ratio, squeeze_ablation=squeeze_ablation)
    try:
        g_kwargs, d_kwargs = preset_networks_kwargs(cfg, resolution, **arch)
    except run_config.ConfigError as exc:
        raise click.UsageError(str(exc))
    click.echo(summary.summarize(g_kwargs, d_kwargs))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
