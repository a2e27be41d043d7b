"""Non-square images: the shape rule, networks with init_res (every block type, D, GGDR/GLeaD heads), dataset_tool
and the reader, a training run, the tools that read its snapshots, and the metrics."""

import json
import os

import numpy as np
import PIL.Image
import pytest
import torch

import calc_metrics
import gen_video
import generate
import projector
from tests import data_helpers as dh
from tests import generate_helpers
from tests.metrics_helpers import write_detector_dir
from tests.train_helpers import tiny_config
from training import export
from training import regularizers
from training.cli import launch as train_launch
from training.dataset import ImageFolderDataset
from training.dataset.transforms import network_shape
from training.networks import Discriminator, Generator, image_shape

ARCHS = ('orig', 'skip', 'resnet', 'squeeze')


@pytest.mark.parametrize('height, width, expected', [
    (32, 64, (32, (4, 8))), (512, 256, (256, (8, 4))), (768, 1280, (512, (6, 10))), (8, 16, (8, (4, 8))),
    (256, 256, (256, None)), (4, 4, (4, None)),
    (24, 24, None), (16, 2, None), (8, 136, None), (30, 64, None),
])
def test_the_shape_rule(height, width, expected):
    """Square: a power of two (StyleGAN2's networks); else (h0, w0) * 2^k with h0, w0 in 4..16, k as large as it goes."""
    assert network_shape(height, width) == expected


def _networks(arch, init_res=(4, 8), c_dim=0, **d_kwargs):
    torch.manual_seed(0)
    G = Generator(16, c_dim, 16, 32, 3, mapping_kwargs=dict(num_layers=2),
                  synthesis_kwargs=dict(channel_base=256, channel_max=16, architecture=arch, init_res=init_res))
    D = Discriminator(c_dim, 32, 3, architecture='resnet' if arch == 'squeeze' else arch, channel_base=256,
                      channel_max=16, init_res=init_res, epilogue_kwargs=dict(mbstd_group_size=2), **d_kwargs)
    return G, D


@pytest.mark.parametrize('arch', ARCHS)
def test_every_block_type_draws_and_judges_non_square_images(arch):
    G, D = _networks(arch)
    img = G(torch.randn([2, 16]), None)
    assert img.shape == (2, 3, 32, 64) and G.img_shape == image_shape(G) == image_shape(D) == (32, 64)
    assert G.synthesis.b4.const.shape[1:] == (4, 8) and D.b4.fc.weight.shape[1] == 16 * 4 * 8
    assert D(img, None).shape == (2, 1)
    const = G(torch.randn([2, 16]), None, noise_mode='const')  # The noise buffers have the blocks' shapes.
    assert const.shape == img.shape
    with pytest.raises(AssertionError):  # A square image of the nominal resolution is not what this D takes.
        D(torch.zeros([2, 3, 32, 32]), None)


def test_fp16_layers_and_labels_work_non_square():
    G = Generator(16, 2, 16, 32, 3, synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=2,
                                                          conv_clamp=256, init_res=(8, 4)))
    D = Discriminator(2, 32, 3, channel_base=256, channel_max=16, num_fp16_res=2, conv_clamp=256, init_res=(8, 4),
                      epilogue_kwargs=dict(mbstd_group_size=2))
    img = G(torch.randn([2, 16]), torch.eye(2))
    assert img.shape == (2, 3, 64, 32) and D(img, torch.eye(2)).shape == (2, 1)


def test_init_res_four_by_four_is_stylegan2s_square_network():
    """(4, 4) builds the very networks (and constructor arguments) of today's square ones: same draws, same images."""
    for init_res in (None, (4, 4)):
        G, D = _networks('skip', init_res=init_res)
        images = G(torch.randn([2, 16], generator=torch.Generator().manual_seed(1)), None, noise_mode='const')
        if init_res is None:
            expected, expected_logits = images, D(images, None)
            continue
        assert torch.equal(images, expected) and torch.equal(D(images, None), expected_logits)
        assert all('shape' not in block.init_kwargs for block in G.synthesis.children() if hasattr(block, 'init_kwargs'))


def test_layers_pickled_before_non_square_networks_still_run():
    """Snapshots restore the attribute dict they were pickled with: without `shape`, the class default (square)."""
    G, _D = _networks('squeeze', init_res=None)
    before = G(torch.randn([1, 16], generator=torch.Generator().manual_seed(2)), None, noise_mode='const')
    for module in G.modules():
        module.__dict__.pop('shape', None)
    after = G(torch.randn([1, 16], generator=torch.Generator().manual_seed(2)), None, noise_mode='const')
    assert torch.equal(before, after)


def test_ggdr_decoder_and_glead_reconstruction_have_the_blocks_shapes():
    G, D = _networks('squeeze', decoder_res=16, glead_kwargs=dict(feature_channels=16, w_dim=16))
    img, features = G.synthesis(G.mapping(torch.randn([2, 16]), None), feature_res=16)
    _logits, heads = D(img, None)
    assert features.shape[2:] == heads['features'].shape[2:] == heads['feature'].shape[2:] == (16, 32)
    assert regularizers.cosine_distance(heads['features'], features).shape == (2,)
    assert regularizers.reconstruct(G, heads, 16).shape == img.shape


def test_dataset_tool_keeps_a_non_square_shape_when_asked_and_the_reader_takes_it(tmp_path):
    source = tmp_path / 'src'
    for i in range(3):
        dh.save_image(str(source / f'{i}.png'), dh.pattern(16, 32, 3, i))        # 32 wide, 16 high.
    dh.save_image(str(tmp_path / 'square' / 'a.png'), dh.pattern(40, 40, 3, 9))  # For the crop below.
    assert dh.run_tool('--source', source, '--dest', tmp_path / 'kept.zip', '--width=32', '--height=16').exit_code == 0
    written = dh.read_png_tree(str(tmp_path / 'kept.zip'))
    np.testing.assert_array_equal(written['00000/img00000000.png'], dh.pattern(16, 32, 3, 0))  # Kept as it was.
    dataset = ImageFolderDataset(str(tmp_path / 'kept.zip'))
    assert dataset.image_shape == [3, 16, 32] and dataset.resolution == 16 and dataset.init_res == (4, 8)
    result = dh.run_tool('--source', tmp_path / 'square', '--dest', tmp_path / 'crop', '--transform=center-crop',
                         '--width=32', '--height=16')
    assert result.exit_code == 0, result.output
    assert dh.read_png_tree(str(tmp_path / 'crop'))['00000/img00000000.png'].shape == (16, 32, 3)


def test_the_projector_fits_its_target_to_the_networks_shape():
    fitted = projector.fit_target(PIL.Image.fromarray(dh.pattern(40, 40, 3, 0)), shape=(8, 16), channels=3)
    assert fitted.shape == (8, 16, 3)
    assert projector.detector_input(torch.zeros([1, 3, 512, 1024])).shape == (1, 3, 128, 256)


@pytest.fixture(scope='module')
def non_square_run(tmp_path_factory):
    """A tiny conditional squeeze run with GGDR and a fixed-p augmentation on 16x32 images."""
    folder = tmp_path_factory.mktemp('non_square')
    data = folder / 'data'
    os.makedirs(data)
    rnd = np.random.RandomState(0)
    for i in range(8):
        PIL.Image.fromarray(rnd.randint(0, 256, [16, 32, 3], dtype=np.uint8)).save(data / f'img{i:05d}.png')
    with open(data / 'dataset.json', 'w', encoding='utf-8') as f:
        json.dump({'labels': [[f'img{i:05d}.png', i % 2] for i in range(8)], 'class_names': ['odd', 'even']}, f)
    config = tiny_config(folder / 'runs', str(data), kimg=0.008, g_arch='squeeze', cond=True, aug='fixed', p=1.0,
                         augpipe='bgc', reg_type='ggdr')
    return train_launch.start(config, env={})


def test_a_run_on_non_square_data_builds_non_square_networks(non_square_run):
    options = json.load(open(os.path.join(non_square_run, 'training_options.json'), encoding='utf-8'))
    assert options['G_kwargs']['synthesis_kwargs']['init_res'] == options['D_kwargs']['init_res'] == [4, 8]
    assert options['training_set_kwargs']['resolution'] == 16
    snapshot = export.load_network(os.path.join(non_square_run, 'network-snapshot-000000.pkl'))
    assert snapshot['G_ema'].img_shape == snapshot['D'].img_shape == (16, 32)
    grid = np.asarray(PIL.Image.open(os.path.join(non_square_run, 'fakes000000.png')))
    cols, rows = options['grid_size']
    assert grid.shape[:2] == (rows * 16, cols * 32)
    ticks = [json.loads(line) for line in open(os.path.join(non_square_run, 'stats.jsonl'))]
    assert 'Loss/D/ggdr' in ticks[-1]


def test_tools_read_a_non_square_snapshot(non_square_run, tmp_path):
    pkl = os.path.join(non_square_run, 'network-snapshot-000000.pkl')
    result = generate_helpers.run_cli(generate.generate_images, [f'--network={pkl}', f'--outdir={tmp_path / "a"}',
                                                                 '--seeds=3', '--class=1', '--device=cpu'])
    assert result.exit_code == 0, result.output
    image = generate_helpers.read_png(tmp_path / 'a' / 'seed0003.png')
    assert image.shape == (16, 32, 3)
    assert generate_helpers.run_cli(export.main, [f'--network={pkl}', f'--dest={tmp_path / "G.pt"}']).exit_code == 0
    result = generate_helpers.run_cli(generate.generate_images, [f'--network={tmp_path / "G.pt"}', '--seeds=3',
                                                                 '--class=1', f'--outdir={tmp_path / "b"}', '--device=cpu'])
    assert result.exit_code == 0, result.output
    assert np.array_equal(generate_helpers.read_png(tmp_path / 'b' / 'seed0003.png'), image)


def test_a_video_of_a_non_square_network_tiles_its_shape(non_square_run, tmp_path):
    pkl = os.path.join(non_square_run, 'network-snapshot-000000.pkl')
    output = tmp_path / 'lerp.gif'
    result = generate_helpers.run_cli(gen_video.main, ['--network', pkl, '--seeds', '0-3', '--grid', '2x1', '--class', '1',
                                                       '--w-frames', '2', '--output', output, '--device', 'cpu'])
    assert result.exit_code == 0, result.output
    with PIL.Image.open(output) as video:
        assert video.n_frames == 2 * 2 and video.size == (2 * 32, 16)


def test_metrics_score_a_non_square_network_against_its_data(non_square_run, tmp_path, monkeypatch):
    """The stand-in detectors, like the public ones, take any size; the real ones stretch to their square input."""
    monkeypatch.setenv('SQUEEZEGAN_DETECTOR_DIR', write_detector_dir(tmp_path / 'detectors'))
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    pkl = os.path.join(non_square_run, 'network-snapshot-000000.pkl')
    result = generate_helpers.run_cli(calc_metrics.main, [f'--network={pkl}', '--metrics=fid1k_full,kid1k_full',
                                                          '--device=cpu'])
    assert result.exit_code == 0, result.output
    results = [json.loads(line)['results'] for line in result.output.splitlines() if line.startswith('{')]
    assert results[0]['fid1k_full'] > 0 and np.isfinite(results[1]['kid1k_full'])


def test_glead_upsamples_small_non_square_images_for_lpips_keeping_their_aspect():
    seen = []
    term = regularizers.GLeaDLoss.__new__(regularizers.GLeaDLoss)
    term.lpips = lambda x, y: seen.append((x.shape, y.shape)) or torch.zeros([x.shape[0]])
    term.perceptual_distance(torch.zeros([2, 3, 16, 32]), torch.zeros([2, 3, 16, 32]))
    term.perceptual_distance(torch.zeros([2, 3, 16, 16]), torch.zeros([2, 3, 16, 16]))
    assert [shape for shape, _ in seen] == [(2, 3, 32, 64), (2, 3, 32, 32)]  # The shorter side to 32, as square ones.
