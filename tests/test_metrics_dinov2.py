"""metrics/dinov2.py computes what the official DINOv2 code computes (features recorded by
tests/reference/record_dinov2.py from seeded weights), reads official checkpoints weights-only, and preprocesses
as FD-DINOv2 (EDM2) does."""

import json

import pytest
import torch

from metrics import dinov2
from tests.reference import record_dinov2 as recording

with open(recording.OUT, encoding='utf-8') as _f:
    RECORDED = json.load(_f)


def _seeded_small():
    model = dinov2.VisionTransformer('vits14')
    shapes = {key: list(value.shape) for key, value in model.state_dict().items()}
    model.load_state_dict(recording.seeded_state(shapes), strict=True)
    return model.eval()


def test_our_key_layout_is_the_official_one():
    ours = {key: list(value.shape) for key, value in dinov2.VisionTransformer('vits14').state_dict().items()}
    assert ours == RECORDED['shapes']


@pytest.mark.parametrize('size', recording.SIZES)
def test_features_match_the_official_code(size):
    with torch.no_grad():
        ours = _seeded_small()(recording.inputs(size))
    expected = torch.tensor(RECORDED['features'][str(size)])
    assert ours.shape == expected.shape == (2, 384)
    assert (ours - expected).abs().max() <= 1e-4 * expected.abs().max()


@pytest.mark.parametrize('arch', sorted(dinov2.ARCHITECTURES))
def test_every_official_size_has_the_official_parameter_count(arch):
    with torch.device('meta'):
        model = dinov2.VisionTransformer(arch)
    assert sum(param.numel() for param in model.parameters()) == RECORDED['param_counts'][arch]


def test_a_checkpoint_file_loads_weights_only_and_names_its_size(tmp_path):
    path = tmp_path / 'dinov2_vits14_pretrain.pth'
    torch.save(_seeded_small().state_dict(), path)
    model = dinov2.load_vision_transformer(str(path))
    assert model.arch == 'vits14'
    with torch.no_grad():
        assert torch.equal(model(recording.inputs(224)), _seeded_small()(recording.inputs(224)))


@pytest.mark.parametrize('content, message', [
    ({'cls_token': torch.zeros(1, 1, 100)}, 'not a DINOv2 ViT/14 checkpoint (width 100, 0 blocks'),
    ({'weights': 'a string'}, 'expected a state dict of tensors'),
])
def test_a_file_that_is_not_a_checkpoint_is_one_line(tmp_path, content, message):
    path = tmp_path / 'dinov2_vitl14_pretrain.pth'
    torch.save(content, path)
    with pytest.raises(ValueError) as info:
        dinov2.load_vision_transformer(str(path))
    assert str(info.value).startswith(str(path)) and message in str(info.value) and '\n' not in str(info.value)


def test_a_pickle_with_code_is_refused(tmp_path):
    path = tmp_path / 'dinov2_vitl14_pretrain.pth'
    torch.save({'cls_token': torch.zeros(1)}, path)
    with open(path, 'wb') as f:  # A pickle that would call print() when loaded without weights_only.
        f.write(b'cbuiltins\nprint\n(S"ran"\ntR.')
    with pytest.raises(ValueError, match='not a readable checkpoint'):
        dinov2.load_vision_transformer(str(path))


def test_preprocessing_resizes_to_224_and_normalises_with_imagenet_statistics():
    white = torch.full([2, 3, 32, 48], 255, dtype=torch.uint8)
    x = dinov2.preprocess(white)
    assert x.shape == (2, 3, 224, 224)
    expected = (1 - torch.tensor(dinov2.IMAGENET_MEAN)) / torch.tensor(dinov2.IMAGENET_STD)
    assert torch.allclose(x[0, :, 100, 100], expected, atol=1e-5)
    gray = torch.randint(0, 256, [1, 1, 16, 16], dtype=torch.uint8)
    assert torch.equal(dinov2.preprocess(gray), dinov2.preprocess(gray.repeat([1, 3, 1, 1])))


def test_preprocessing_is_bicubic_with_antialiasing_on_0_255_values():
    images = torch.randint(0, 256, [1, 3, 300, 300], dtype=torch.uint8)
    resized = torch.nn.functional.interpolate(images.float(), size=(224, 224), mode='bicubic', antialias=True)
    mean = torch.tensor(dinov2.IMAGENET_MEAN).reshape(1, 3, 1, 1)
    std = torch.tensor(dinov2.IMAGENET_STD).reshape(1, 3, 1, 1)
    assert torch.allclose(dinov2.preprocess(images), (resized / 255 - mean) / std, atol=1e-6)

#----------------------------------------------------------------------------
# FD-DINOv2 as a metric (a seeded ViT-S/14 checkpoint under the official file name stands in for ViT-L/14).

@pytest.fixture
def dinov2_dir(tmp_path):
    torch.save(_seeded_small().state_dict(), tmp_path / 'dinov2_vitl14_pretrain.pth')
    return str(tmp_path)


def test_fd_dinov2_is_a_metric_with_its_own_detector():
    from metrics import detectors, metric_main  # pylint: disable=import-outside-toplevel
    for name in ('fd_dinov2_50k_full', 'fd_dinov2_10k_full', 'fd_dinov2_2k'):
        assert metric_main.is_valid_metric(name)
        assert metric_main.required_detectors(name) == [detectors.DINOV2]
    assert detectors.DINOV2.file_name == 'dinov2_vitl14_pretrain.pth'


def test_fd_dinov2_of_a_set_against_itself_is_zero_and_of_another_is_not(tmp_path, dinov2_dir):
    from metrics import fd_dinov2, metric_utils  # pylint: disable=import-outside-toplevel
    from tests import metrics_helpers as helpers  # pylint: disable=import-outside-toplevel
    from tests.reference.record_metrics import ReplayGenerator, image_sets, write_png_folder  # pylint: disable=import-outside-toplevel
    reals, fakes = image_sets()
    reals, fakes = reals[:6], fakes[:6]
    dataset_kwargs = helpers.dataset_kwargs_for(write_png_folder(str(tmp_path / 'reals'), reals))

    def fd(images):
        opts = metric_utils.MetricOptions(G=ReplayGenerator(images), dataset_kwargs=dataset_kwargs, device='cpu',
                                          cache=False, detector_dir=dinov2_dir)
        return fd_dinov2.compute_fd_dinov2(opts, max_real=None, num_gen=len(images))
    same, other = fd(reals), fd(fakes)
    assert abs(same) < 1e-5 * other and other > 0  # sqrtm's rounding on a rank-5 covariance of 384 features.


def test_a_damaged_dinov2_file_is_one_line_naming_it(tmp_path):
    from metrics import detectors  # pylint: disable=import-outside-toplevel
    (tmp_path / 'dinov2_vitl14_pretrain.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(detectors.DetectorUnavailableError) as info:
        detectors.get_detector(detectors.DINOV2, 'cpu', detector_dir=tmp_path)
    assert 'dinov2_vitl14_pretrain.pth: not a readable checkpoint' in str(info.value) and '\n' not in str(info.value)
