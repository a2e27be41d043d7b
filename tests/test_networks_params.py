"""Parameter counts at the paper's 256x256 setting, and the `python -m training.cli.summary` command."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from training.networks import Discriminator, Generator
from training.cli import summary as networks_cli
from tests import limits

# stylegan2-ada-pytorch at --cfg=paper256 (channel_base 16384, channel_max 512, 8 mapping layers),
# worked out from its layer shapes (w_dim 512; channels 512 at 4..32, 256, 128, 64 at 64..256):
#   G skip: mapping 8 * (512*512 + 512) = 2,101,248; const 512*4*4; per SynthesisLayer(i, o, 3):
#   affine 512*i + i, weight o*i*9, bias o, noise_strength 1; per ToRGB(i): 512*i + i + 3*i + 3;
#   b4 = const + conv1 + torgb, b8..b256 = conv0 + conv1 + torgb.                 -> 24,767,458
#   D resnet: per block (t -> o): conv0 t*t*9 + t, conv1 o*t*9 + o, skip o*t; fromrgb at 256 3*64 + 64;
#   epilogue conv 512*513*9 + 512, fc 8192*512 + 512, out 512 + 1.               -> 24,001,089
OFFICIAL_PAPER256_SKIP_G = 24_767_458
OFFICIAL_PAPER256_RESNET_D = 24_001_089
PAPER_TABLE_V_SQUEEZE_G = {4: 24.25e6, 8: 21.80e6, 16: 20.56e6}


def _count(module):
    return sum(p.numel() for p in module.parameters())


def _paper256(g_arch, squeeze_ratio=8):
    squeeze = dict(squeeze_ratio=squeeze_ratio) if g_arch == 'squeeze' else {}
    return networks_cli.preset_networks_kwargs('paper256', 256, g_arch=g_arch, **squeeze)


@pytest.mark.slow
def test_skip_generator_and_resnet_discriminator_match_stylegan2_ada_at_paper256():
    g_kwargs, d_kwargs = _paper256('skip')
    assert d_kwargs['architecture'] == 'resnet'
    assert _count(Generator(**g_kwargs)) == OFFICIAL_PAPER256_SKIP_G
    assert _count(Discriminator(**d_kwargs)) == OFFICIAL_PAPER256_RESNET_D


@pytest.mark.slow
@pytest.mark.parametrize('squeeze_ratio', [4, 8, 16])
def test_squeeze_generator_param_count_within_2_percent_of_paper_table_v(squeeze_ratio):
    G = Generator(**_paper256('squeeze', squeeze_ratio)[0])
    paper = PAPER_TABLE_V_SQUEEZE_G[squeeze_ratio]
    assert abs(_count(G) - paper) / paper < 0.02
    assert _count(G) < OFFICIAL_PAPER256_SKIP_G


def test_skip_generator_at_paper256_projects_2496_channels_to_rgb():
    # Section III-A: the 256x256 skip G is one 1x1 projection of 2,496 concatenated feature channels.
    G = Generator(**_paper256('skip')[0])
    torgbs = [m for name, m in G.named_modules() if name.endswith('torgb')]
    assert sum(m.weight.shape[1] for m in torgbs) == 2496


def _summary(*args):
    return subprocess.run([sys.executable, '-m', 'training.cli.summary', *args],
                          capture_output=True, text=True, timeout=limits.seconds(120))


@pytest.mark.slow
def test_summary_command_prints_counts_and_a_row_per_block():
    result = _summary('--cfg', 'paper256', '--g-arch', 'squeeze', '--squeeze-ratio', '16')
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert 'squeeze_ratio=16' in out and 'num_ws=24' in out
    for block in ['mapping', 'b4', 'b8', 'b64', 'b256']:
        assert f'  {block} ' in out
    g_kwargs, d_kwargs = _paper256('squeeze', 16)
    assert f'G params: {_count(Generator(**g_kwargs)):,}' in out
    assert f'D params: {OFFICIAL_PAPER256_RESNET_D:,}' in out


@pytest.mark.parametrize('args, message', [
    (['--cfg', 'paper999'], 'paper999.json; accepted: auto, cifar'),
    (['--cfg', 'cifar'], '--cfg cifar does not name a resolution; pass --resolution'),
    (['--resolution', '48'], '48 is not a power of two'),
])
def test_summary_command_rejects_bad_input_in_one_line(args, message):
    result = CliRunner().invoke(networks_cli.main, list(args))
    assert result.exit_code == 2
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
