"""LPIPS v0.1 (AlexNet): the distance's properties and formula, and finding and safely loading its two weight files."""

import os

import pytest
import torch

import dnnlib
from metrics import detectors
from metrics import lpips
from tests import metrics_helpers as helpers
from tests.safety_helpers import network_pickle, open_payload




@pytest.fixture
def metric():
    torch.manual_seed(0)
    return lpips.LPIPS()


def _images(seed, shape=(2, 3, 64, 64)):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1

#----------------------------------------------------------------------------
# The distance.


def test_distance_of_an_image_to_itself_is_zero(metric):
    img = _images(0)
    assert torch.equal(metric(img, img.clone()), torch.zeros([2]))


def test_distance_is_symmetric(metric):
    img0, img1 = _images(0), _images(1)
    torch.testing.assert_close(metric(img0, img1), metric(img1, img0))


def test_distance_is_one_positive_value_per_sample_for_different_images(metric):
    distance = metric(_images(0), _images(1))
    assert distance.shape == (2,)
    assert (distance > 0).all()


def test_gradient_reaches_both_inputs_and_not_the_weights(metric):
    img0, img1 = _images(0).requires_grad_(True), _images(1).requires_grad_(True)
    metric(img0, img1).sum().backward()
    assert img0.grad.abs().sum() > 0 and img1.grad.abs().sum() > 0
    assert all(not param.requires_grad and param.grad is None for param in metric.parameters())


def test_smallest_accepted_image_is_31_px(metric):
    assert metric(_images(0, (1, 3, 31, 40)), _images(1, (1, 3, 31, 40))).shape == (1,)
    with pytest.raises(ValueError, match='at least 31x31 px'):
        metric(_images(0, (1, 3, 40, 30)), _images(1, (1, 3, 40, 30)))


@pytest.mark.parametrize('shape1', [(2, 3, 64, 48), (2, 1, 64, 64), (3, 64, 64)])
def test_images_of_other_shapes_are_refused(metric, shape1):
    with pytest.raises(ValueError, match='LPIPS: '):
        metric(_images(0), _images(1, shape1))


def test_alexnet_parameter_names_match_torchvision_features():
    names = set(lpips.AlexNetFeatures().state_dict())
    assert names == {f'features.{i}.{kind}' for i in (0, 3, 6, 8, 10) for kind in ('weight', 'bias')}
    assert lpips.ALEXNET_SHAPES['features.0.weight'] == (64, 3, 11, 11)
    assert lpips.LINEAR_SHAPES['lin4.model.1.weight'] == (1, 256, 1, 1)

#----------------------------------------------------------------------------
# The formula (LPIPS eq. 1) on hand-computed cases.


class _FixedFeatures(torch.nn.Module):
    """Ignores the images and returns given taps (first half: img0's features, second half: img1's); records input."""

    def __init__(self, taps):
        super().__init__()
        self.taps = taps

    def forward(self, x):
        self.seen = x
        return self.taps


def _taps_differing_at_one_pixel():
    """Tap 0 of img0 is (3, 4, 0, ...) at pixel (0, 0), img1's is (0, 0, 1, 0, ...); all else equal (zero or one)."""
    taps = [torch.ones([2, ch, 1, 2]) for ch in lpips.TAP_CHANNELS]
    taps[0] = torch.zeros([2, 64, 1, 2])
    taps[0][0, :2, 0, 0] = torch.tensor([3., 4.])
    taps[0][1, 2, 0, 0] = 1.
    return taps


def test_distance_is_weighted_squared_difference_of_unit_features_averaged_over_pixels(metric):
    metric.net = _FixedFeatures(_taps_differing_at_one_pixel())
    metric.lins[0].data = torch.arange(1., 65.).reshape(1, 64, 1, 1)
    # Unit features at (0, 0): (.6, .8, 0) and (0, 0, 1); squared difference (.36, .64, 1) weighted by (1, 2, 3)
    # is 4.64; pixel (0, 1) and the other taps are equal in both images, so the mean over two pixels is 2.32.
    distance = metric(_images(0, (1, 3, 32, 32)), _images(1, (1, 3, 32, 32)))
    torch.testing.assert_close(distance, torch.tensor([2.32]))


def test_inputs_are_shifted_and_scaled_before_alexnet(metric):
    metric.net = _FixedFeatures(_taps_differing_at_one_pixel())
    img0, img1 = torch.full([1, 3, 32, 32], -1.), torch.ones([1, 3, 32, 32])
    metric(img0, img1)
    shift, scale = torch.tensor([-.030, -.088, -.188]), torch.tensor([.458, .448, .450])
    torch.testing.assert_close(metric.net.seen[:, :, 5, 7], torch.stack([(-1 - shift) / scale, (1 - shift) / scale]))


def test_unit_normalize_divides_by_channel_norm_plus_tiny_epsilon():
    features = torch.tensor([[3., 0.], [4., 0.]]).reshape(1, 2, 1, 2)
    torch.testing.assert_close(lpips.unit_normalize(features).flatten(), torch.tensor([.6, 0., .8, 0.]))

#----------------------------------------------------------------------------
# Finding and loading the weight files.


def test_weights_in_detector_dir_are_loaded_without_download(tmp_path, cache_dir, no_downloads):
    folder, alexnet_state, linear_state = helpers.write_lpips_weight_dir(tmp_path / 'detectors')
    loaded = lpips.load_lpips('cpu', detector_dir=folder)
    expected = lpips.LPIPS(alexnet_state=alexnet_state, linear_state=linear_state)
    img0, img1 = _images(0), _images(1)
    torch.testing.assert_close(loaded(img0, img1), expected(img0, img1), rtol=0, atol=0)
    assert not loaded.training
    assert not any(param.requires_grad for param in loaded.parameters())


def test_detector_dir_environment_variable_is_searched(tmp_path, cache_dir, no_downloads, monkeypatch):
    folder, _, _ = helpers.write_lpips_weight_dir(tmp_path / 'detectors')
    monkeypatch.setenv(detectors.DETECTOR_DIR_ENV, folder)
    assert lpips.check_lpips_available() == (os.path.join(folder, 'alexnet-owt-7be5be79.pth'),
                                             os.path.join(folder, 'alex.pth'))
    assert lpips.load_lpips('cpu')(_images(0), _images(1)).shape == (2,)


@pytest.mark.parametrize('present', [(), ('alex.pth',), ('alexnet-owt-7be5be79.pth',)])
def test_missing_files_offline_is_one_line_error_naming_both_files_and_option(tmp_path, cache_dir, no_downloads, present):
    folder, _, _ = helpers.write_lpips_weight_dir(tmp_path / 'detectors')
    for name in {'alex.pth', 'alexnet-owt-7be5be79.pth'} - set(present):
        os.remove(os.path.join(folder, name))
    with pytest.raises(detectors.DetectorUnavailableError) as info:
        lpips.check_lpips_available(detector_dir=folder)
    message = str(info.value)
    assert '\n' not in message
    for part in ('alexnet-owt-7be5be79.pth', 'alex.pth', '--detector-dir', 'SQUEEZEGAN_DETECTOR_DIR'):
        assert part in message


def test_public_urls_are_the_torchvision_and_lpips_ones():
    assert lpips.ALEXNET.url == 'https://download.pytorch.org/models/alexnet-owt-7be5be79.pth'
    assert lpips.LPIPS_ALEX.url == ('https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/'
                                    'lpips/weights/v0.1/alex.pth')


@pytest.mark.filterwarnings('ignore:Detected pickle protocol:UserWarning')  # torch notes a plain pickle's protocol.
@pytest.mark.parametrize('file_name', ['alexnet-owt-7be5be79.pth', 'alex.pth'])
@pytest.mark.parametrize('writer', ['torch_save', 'plain_pickle'])
def test_malicious_pickle_under_a_weight_file_name_is_refused_without_running(tmp_path, cache_dir, no_downloads,
                                                                              file_name, writer):
    folder, _, _ = helpers.write_lpips_weight_dir(tmp_path / 'detectors')
    marker, path = tmp_path / 'pwned', os.path.join(folder, file_name)
    if writer == 'torch_save':
        torch.save(open_payload(marker), path)
    else:
        network_pickle(path, open_payload(marker))
    with pytest.raises(detectors.DetectorUnavailableError) as info:
        lpips.load_lpips('cpu', detector_dir=folder)
    assert '\n' not in str(info.value) and path in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize('file_name, key', [('alexnet-owt-7be5be79.pth', 'features.6.weight'),
                                            ('alex.pth', 'lin2.model.1.weight')])
def test_missing_key_is_one_line_error_naming_file_and_key(tmp_path, cache_dir, no_downloads, file_name, key):
    folder, alexnet_state, linear_state = helpers.write_lpips_weight_dir(tmp_path / 'detectors')
    state = alexnet_state if file_name.startswith('alexnet') else linear_state
    del state[key]
    torch.save(state, os.path.join(folder, file_name))
    with pytest.raises(detectors.DetectorUnavailableError) as info:
        lpips.load_lpips('cpu', detector_dir=folder)
    message = str(info.value)
    assert '\n' not in message and os.path.join(folder, file_name) in message and f'missing {key}' in message


@pytest.mark.parametrize('file_name, key', [('alexnet-owt-7be5be79.pth', 'features.3.bias'),
                                            ('alex.pth', 'lin0.model.1.weight')])
def test_wrong_shape_is_one_line_error_naming_file_and_key(tmp_path, cache_dir, no_downloads, file_name, key):
    folder, alexnet_state, linear_state = helpers.write_lpips_weight_dir(tmp_path / 'detectors')
    state = alexnet_state if file_name.startswith('alexnet') else linear_state
    state[key] = torch.zeros([7])
    torch.save(state, os.path.join(folder, file_name))
    with pytest.raises(detectors.DetectorUnavailableError) as info:
        lpips.load_lpips('cpu', detector_dir=folder)
    message = str(info.value)
    assert '\n' not in message and os.path.join(folder, file_name) in message and f'{key} has shape [7]' in message


def test_state_dicts_given_to_the_constructor_are_checked_too():
    _, linear_state = helpers.lpips_weight_states()
    with pytest.raises(ValueError, match='linear_state: missing lin0.model.1.weight'):
        lpips.LPIPS(linear_state={'lin0.weight': linear_state['lin0.model.1.weight']})
