"""gen_video.py: a grid of seeds looping through W on a closed cubic spline, written as GIF/WebP (Pillow) or MP4
(the optional [video] extra), with one-line errors."""

import sys

import numpy as np
import PIL.Image
import pytest
import torch

import gen_video
import generate
from tests import generate_helpers as helpers


@pytest.fixture(scope='module')
def snapshot(tmp_path_factory):
    return helpers.write_snapshot(tmp_path_factory.mktemp('net') / 'network-snapshot-000000.pkl', helpers.make_networks())


@pytest.fixture(scope='module')
def conditional(tmp_path_factory):
    return helpers.write_snapshot(tmp_path_factory.mktemp('cnet') / 'network-snapshot-000000.pkl',
                                  helpers.make_networks(c_dim=3))


def _frames(path):
    with PIL.Image.open(path) as image:
        frames = []
        for index in range(image.n_frames):
            image.seek(index)
            frames.append(np.array(image.convert('RGB')))
    return frames


def test_the_spline_passes_through_every_keyframe_and_closes_the_loop():
    keyframes = torch.randn([4, 3, 5])
    frames = gen_video.catmull_rom_loop(keyframes, w_frames=6)
    assert frames.shape == (24, 3, 5)
    for k in range(4):
        assert torch.allclose(frames[k * 6], keyframes[k], atol=1e-6)
    # The step from the last frame back to the first is as small as the steps around it: no jump at the seam.
    steps = (frames.roll(-1, dims=0) - frames).flatten(1).norm(dim=1)
    assert steps[-1] < 2 * steps[-2] and steps[-1] < 2 * steps[0] and steps.max() < 0.5 * (keyframes[1] - keyframes[0]).norm()


def test_a_gif_has_keyframes_times_w_frames_frames_of_the_grid_and_starts_on_the_first_seeds(snapshot, tmp_path):
    output = tmp_path / 'lerp.gif'
    result = helpers.run_cli(gen_video.main, ['--network', snapshot, '--seeds', '0-5', '--grid', '3x1', '--w-frames', '4',
                                              '--output', output, '--device', 'cpu'])
    assert result.exit_code == 0, result.output
    frames = _frames(output)
    assert len(frames) == 2 * 4 and frames[0].shape == (helpers.RESOLUTION, 3 * helpers.RESOLUTION, 3)
    G = generate.load_generator(snapshot, torch.device('cpu'))
    first = generate.render_seeds(G, [0, 2, 4], generate.make_labels(G, None, 3, torch.device('cpu')), 1, None, 'const',
                                  3, torch.device('cpu'))
    # GIF quantises colours: the first frame is the keyframes' images up to the palette.
    expected = np.concatenate([image for _name, image in first], axis=1)
    assert np.abs(frames[0].astype(int) - expected.astype(int)).mean() < 8


def test_a_webp_loops_and_a_conditional_network_takes_its_class(conditional, tmp_path):
    output = tmp_path / 'twos.webp'
    result = helpers.run_cli(gen_video.main, ['--network', conditional, '--seeds', '0-3', '--grid', '2x1', '--w-frames', '3',
                                              '--class', '2', '--output', output, '--device', 'cpu'])
    assert result.exit_code == 0, result.output
    with PIL.Image.open(output) as image:
        assert image.n_frames == 6 and image.info.get('loop', 0) == 0


@pytest.mark.parametrize('args, message', [
    (['--seeds', '0-4', '--grid', '2x1'], '5 seeds do not split into 2 cells of 2 or more keyframes'),
    (['--seeds', '0-5', '--grid', '2x1', '--num-keyframes', '2'], '6 seeds, but --grid=2x1 with --num-keyframes=2 needs 4'),
    (['--seeds', '0-3', '--grid', '2by1'], '2by1: expected WxH'),
    (['--seeds', '0-3', '--output', '{tmp}/x.avi'], 'unknown video format .avi; accepted: .mp4, .gif, .webp'),
    (['--seeds', '0-3', '--class', '1'], 'the network is unconditional'),
])
def test_bad_input_is_one_line(snapshot, tmp_path, args, message):
    args = [arg.format(tmp=tmp_path) for arg in args]
    if '--output' not in args:
        args += ['--output', str(tmp_path / 'x.gif')]
    result = helpers.run_cli(gen_video.main, ['--network', snapshot, '--device', 'cpu', *args])
    assert message in helpers.error_line(result)


def test_mp4_without_the_video_extra_is_one_line_saying_how_to_get_it(snapshot, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'imageio', None)  # As if the extra were not installed.
    result = helpers.run_cli(gen_video.main, ['--network', snapshot, '--seeds', '0-1', '--w-frames', '2', '--output',
                                              tmp_path / 'x.mp4', '--device', 'cpu'])
    assert 'pip install .[video]' in helpers.error_line(result) and not (tmp_path / 'x.mp4').exists()


def test_an_mp4_has_every_frame_where_the_video_extra_is_installed(snapshot, tmp_path):
    imageio = pytest.importorskip('imageio')
    pytest.importorskip('imageio_ffmpeg')
    output = tmp_path / 'lerp.mp4'
    result = helpers.run_cli(gen_video.main, ['--network', snapshot, '--seeds', '0-3', '--grid', '2x1', '--w-frames', '5',
                                              '--fps', '10', '--output', output, '--device', 'cpu'])
    assert result.exit_code == 0, result.output
    with imageio.get_reader(str(output), format='FFMPEG') as reader:
        frames = [frame for frame in reader]
    assert len(frames) == 2 * 5 and frames[0].shape == (helpers.RESOLUTION, 2 * helpers.RESOLUTION, 3)
