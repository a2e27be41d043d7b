"""projector.py on a tiny generator with a stand-in VGG16: the objective, the schedules, the files, bad input."""

import os
import sys

import numpy as np
import PIL.Image
import pytest
import torch

import generate
import projector
from metrics import detectors
from tests import generate_helpers as helpers
from tests import metrics_helpers

KNOWN_SEED = 5  # The target is G's own image of this seed's w, so a perfect projection exists.


@pytest.fixture(scope='module')
def snapshot(tmp_path_factory):
    return helpers.tiny_snapshot(tmp_path_factory.mktemp('snapshot'))


@pytest.fixture(scope='module')
def detector_dir(tmp_path_factory):
    return metrics_helpers.write_detector_dir(tmp_path_factory.mktemp('detectors'))


@pytest.fixture(scope='module')
def target(snapshot, tmp_path_factory):
    """(HWC uint8 target image, its PNG path): G's image of a known w."""
    G, _pkl = snapshot
    z = torch.from_numpy(np.random.RandomState(KNOWN_SEED).randn(1, G.z_dim))
    with torch.no_grad():
        image = generate.to_uint8(G.synthesis(G.mapping(z, None), noise_mode='const'))[0]
    path = tmp_path_factory.mktemp('target') / 'target-in.png'
    PIL.Image.fromarray(image).save(path)
    return image, str(path)


def run(network, target_path, outdir, *args, detector_dir=None):
    extra = [f'--detector-dir={detector_dir}'] if detector_dir is not None else []
    return helpers.run_cli(projector.main, [f'--network={network}', f'--target={target_path}', f'--outdir={outdir}',
                                            '--device=cpu', '--num-steps=20', *extra, *args])

#----------------------------------------------------------------------------
# The method.


def test_defaults_are_those_of_stylegan2_ada_pytorch():
    assert (projector.NUM_STEPS, projector.W_AVG_SAMPLES) == (1000, 10000)
    assert (projector.INITIAL_LEARNING_RATE, projector.INITIAL_NOISE_FACTOR) == (0.1, 0.05)
    assert (projector.LR_RAMPUP_LENGTH, projector.LR_RAMPDOWN_LENGTH, projector.NOISE_RAMP_LENGTH) == (0.05, 0.25, 0.75)
    assert projector.REGULARIZE_NOISE_WEIGHT == 1e5


def test_short_projection_lowers_the_feature_distance(snapshot, target, detector_dir):
    G, _pkl = snapshot
    vgg16, _digest = detectors.get_detector(detectors.VGG16, device='cpu', detector_dir=detector_dir)
    image = torch.from_numpy(target[0].copy()).permute(2, 0, 1)
    result = projector.project(G, image, vgg16, num_steps=20, seed=0)
    assert result.w_steps.shape == (20, G.num_ws, G.w_dim)
    assert result.distances[-1] < 0.5 * result.distances[0], result.distances


def test_projection_leaves_the_loaded_generator_unchanged(snapshot, target, detector_dir):
    G, _pkl = snapshot
    before = {name: buf.clone() for name, buf in G.named_buffers()}
    vgg16, _digest = detectors.get_detector(detectors.VGG16, device='cpu', detector_dir=detector_dir)
    projector.project(G, torch.from_numpy(target[0].copy()).permute(2, 0, 1), vgg16, num_steps=3)
    assert all(torch.equal(buf, before[name]) for name, buf in G.named_buffers())


def test_noise_penalty_of_a_constant_map_counts_every_pyramid_level():
    # 16x16 of ones: autocorrelation 1 in x and y at 16x16, and again at 8x8 after pooling -> 4 terms of 1.
    assert projector.noise_regularization([torch.ones([16, 16])]).item() == pytest.approx(4.0)
    assert projector.noise_regularization([torch.ones([4, 4])]).item() == pytest.approx(2.0)


def test_noise_penalty_of_a_checkerboard_vanishes_after_pooling():
    # Neighbours have opposite signs: (-1)^2 in x and y at 16x16; 2x2 pooling averages it to zeros.
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 * 2.0 - 1
    assert projector.noise_regularization([checker]).item() == pytest.approx(2.0)


def test_noise_penalty_sums_over_maps_and_is_small_for_white_noise():
    maps = [torch.ones([16, 16]), torch.ones([4, 4])]
    assert projector.noise_regularization(maps).item() == pytest.approx(6.0)
    white = torch.randn([64, 64], generator=torch.Generator().manual_seed(0))
    assert projector.noise_regularization([white]).item() < 1e-2


def test_noise_maps_are_renormalised_to_zero_mean_unit_variance():
    maps = [torch.randn([8, 8]) * 3 + 2, torch.rand([4, 4])]
    projector.normalize_noise_(maps)
    for noise in maps:
        assert noise.mean().item() == pytest.approx(0, abs=1e-6)
        assert noise.square().mean().item() == pytest.approx(1, abs=1e-5)


def test_learning_rate_ramps_up_then_down():
    assert projector.learning_rate(0) == 0
    assert projector.learning_rate(0.05) == pytest.approx(0.1)
    assert projector.learning_rate(0.5) == pytest.approx(0.1)
    assert projector.learning_rate(0.875) == pytest.approx(0.05)  # Half way down the cosine.
    assert projector.learning_rate(1) == pytest.approx(0)


def test_noise_added_to_w_decays_to_zero_at_three_quarters():
    assert projector.w_noise_scale(0, w_std=2) == pytest.approx(0.1)
    assert projector.w_noise_scale(0.375, w_std=2) == pytest.approx(0.025)
    assert projector.w_noise_scale(0.75, w_std=2) == 0
    assert projector.w_noise_scale(0.9, w_std=2) == 0

#----------------------------------------------------------------------------
# The command line.


def test_cli_writes_projected_w_final_image_and_target(snapshot, target, detector_dir, tmp_path):
    G, pkl = snapshot
    result = run(pkl, target[1], tmp_path, detector_dir=detector_dir)
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path)) == ['proj.png', 'projected_w.npz', 'target.png']
    with np.load(tmp_path / 'projected_w.npz') as data:
        assert data.files == ['w'] and data['w'].shape == (1, G.num_ws, G.w_dim)
    assert np.array_equal(helpers.read_png(tmp_path / 'target.png'), target[0])
    assert helpers.read_png(tmp_path / 'proj.png').shape == target[0].shape
    assert 'step 20/20: dist' in result.output


def test_generate_renders_the_projected_w(snapshot, target, detector_dir, tmp_path):
    G, pkl = snapshot
    assert run(pkl, target[1], tmp_path / 'proj', detector_dir=detector_dir).exit_code == 0
    result = helpers.run_cli(generate.generate_images, [f'--network={pkl}', f'--outdir={tmp_path / "render"}',
                                                        f'--projected-w={tmp_path / "proj" / "projected_w.npz"}',
                                                        '--device=cpu'])
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / 'proj' / 'projected_w.npz') as data:
        w = torch.from_numpy(data['w'])
    with torch.no_grad():
        expected = generate.to_uint8(G.synthesis(w, noise_mode='const'))[0]
    assert np.array_equal(helpers.read_png(tmp_path / 'render' / 'proj00.png'), expected)


def test_existing_outputs_are_kept_without_overwrite(snapshot, target, detector_dir, tmp_path):
    _G, pkl = snapshot
    (tmp_path / 'proj.png').write_bytes(b'earlier result')
    line = helpers.error_line(run(pkl, target[1], tmp_path, detector_dir=detector_dir))
    assert 'proj.png exists' in line and '--overwrite' in line
    assert (tmp_path / 'proj.png').read_bytes() == b'earlier result'
    assert sorted(os.listdir(tmp_path)) == ['proj.png']
    assert run(pkl, target[1], tmp_path, '--overwrite', detector_dir=detector_dir).exit_code == 0
    assert (tmp_path / 'proj.png').read_bytes() != b'earlier result'


def test_missing_detector_offline_names_detector_dir(snapshot, target, tmp_path, cache_dir, no_downloads):
    _G, pkl = snapshot
    line = helpers.error_line(run(pkl, target[1], tmp_path / 'out'))
    assert 'vgg16.pt' in line and '--detector-dir' in line


def test_save_video_without_a_writer_says_what_to_install(snapshot, target, detector_dir, tmp_path, monkeypatch):
    _G, pkl = snapshot
    monkeypatch.setitem(sys.modules, 'imageio', None)  # None in sys.modules makes the import fail.
    line = helpers.error_line(run(pkl, target[1], tmp_path, '--save-video', detector_dir=detector_dir))
    assert '--save-video' in line and 'pip install .[video]' in line
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize('args, expected', [
    (['--num-steps=nan'], '--num-steps'),
    (['--num-steps=0'], '--num-steps'),
    (['--detector-dir=/nonexistent/folder'], '--detector-dir'),
])
def test_bad_options_are_one_line_errors(snapshot, target, tmp_path, args, expected):
    _G, pkl = snapshot
    assert expected in helpers.error_line(run(pkl, target[1], tmp_path / 'out', *args))


def test_missing_target_is_one_line_error(snapshot, detector_dir, tmp_path):
    _G, pkl = snapshot
    line = helpers.error_line(run(pkl, tmp_path / 'absent.png', tmp_path / 'out', detector_dir=detector_dir))
    assert '--target' in line and 'absent.png' in line


def test_unreadable_target_is_one_line_error(snapshot, detector_dir, tmp_path):
    _G, pkl = snapshot
    (tmp_path / 'notes.png').write_text('not an image')
    line = helpers.error_line(run(pkl, tmp_path / 'notes.png', tmp_path / 'out', detector_dir=detector_dir))
    assert '--target' in line and 'not a readable image' in line


def test_network_without_g_ema_is_one_line_error(target, detector_dir, tmp_path):
    networks = helpers.make_networks(c_dim=0)
    del networks['G_ema']
    pkl = helpers.write_snapshot(tmp_path / 'no-g-ema.pkl', networks)
    assert 'holds no G_ema' in helpers.error_line(run(pkl, target[1], tmp_path / 'out', detector_dir=detector_dir))


def test_a_conditional_network_projects_into_the_class_it_is_given(target, detector_dir, tmp_path):
    networks = helpers.make_networks(c_dim=3)
    pkl = helpers.write_snapshot(tmp_path / 'conditional.pkl', networks)
    assert '--class=0..2' in helpers.error_line(run(pkl, target[1], tmp_path / 'none', detector_dir=detector_dir))
    result = run(pkl, target[1], tmp_path / 'out', '--class=2', detector_dir=detector_dir)
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path / 'out')) == ['proj.png', 'projected_w.npz', 'target.png']
    G = networks['G_ema']
    starts = [projector.w_statistics(G, 64, 'cpu', torch.eye(3)[[k]])[0] for k in range(3)]
    assert not torch.allclose(starts[0], starts[2])  # The class moves the starting w.


def test_class_on_an_unconditional_network_is_one_line(snapshot, target, detector_dir, tmp_path):
    _G, pkl = snapshot
    assert 'unconditional' in helpers.error_line(run(pkl, target[1], tmp_path / 'out', '--class=1',
                                                     detector_dir=detector_dir))


def test_non_square_target_is_center_cropped_and_resized():
    image = np.zeros([20, 40, 3], dtype=np.uint8)
    image[:, 10:30] = 255  # The centre square is white; the sides cropped away are black.
    fitted = projector.fit_target(PIL.Image.fromarray(image), shape=(8, 8), channels=3)
    assert fitted.shape == (8, 8, 3) and (fitted == 255).all()
    assert projector.fit_target(PIL.Image.fromarray(image), shape=(8, 8), channels=1).shape == (8, 8, 1)


class FakeVideoWriter:
    """Stands in for imageio's ffmpeg writer: keeps the frames, writes a file on close."""

    def __init__(self, path, frames):
        self.path, self.frames = path, frames

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        with open(self.path, 'wb') as f:
            f.write(b'video')

    def append_data(self, frame):
        self.frames.append(frame)


def test_save_video_writes_target_beside_each_step(snapshot, target, detector_dir, tmp_path, monkeypatch):
    _G, pkl = snapshot
    frames = []
    fake = type(sys)('imageio')
    fake.get_writer = lambda path, **kwargs: FakeVideoWriter(path, frames)
    monkeypatch.setitem(sys.modules, 'imageio', fake)
    monkeypatch.setitem(sys.modules, 'imageio_ffmpeg', type(sys)('imageio_ffmpeg'))
    result = run(pkl, target[1], tmp_path, '--save-video', detector_dir=detector_dir)
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path)) == ['proj.mp4', 'proj.png', 'projected_w.npz', 'target.png']
    assert len(frames) == 20 and frames[0].shape == (16, 32, 3)
    assert all(np.array_equal(frame[:, :16], target[0]) for frame in frames)
    assert np.array_equal(frames[-1][:, 16:], helpers.read_png(tmp_path / 'proj.png'))
