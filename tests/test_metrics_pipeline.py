"""Detector lookup and offline errors, the dataset statistics cache, and calc_metric end to end on stand-ins."""

import os

import numpy as np
import pytest
import torch

import dnnlib
from metrics import detectors
from metrics import metric_main
from metrics import metric_utils
from metrics import perceptual_path_length
from metrics.feature_stats import FeatureStats
from tests import metrics_helpers as helpers
from torch_utils import persistence




def _options(dataset_kwargs, detector_dir, **kwargs):
    return metric_utils.MetricOptions(G=helpers.StandInGenerator(), dataset_kwargs=dataset_kwargs, device='cpu',
                                      detector_dir=detector_dir, **kwargs)

#----------------------------------------------------------------------------
# Finding detectors.


def test_detector_in_detector_dir_is_used_without_download(tmp_path, cache_dir, no_downloads):
    folder = helpers.write_detector_dir(tmp_path / 'detectors')
    path = detectors.resolve_detector_file(detectors.INCEPTION, detector_dir=folder)
    assert path == os.path.join(folder, 'inception-2015-12-05.pt')


def test_detector_dir_environment_variable_is_searched(tmp_path, cache_dir, no_downloads, monkeypatch):
    folder = helpers.write_detector_dir(tmp_path / 'detectors')
    monkeypatch.setenv(detectors.DETECTOR_DIR_ENV, folder)
    assert detectors.resolve_detector_file(detectors.VGG16) == os.path.join(folder, 'vgg16.pt')


def test_detector_already_in_download_cache_is_used_offline(tmp_path, cache_dir, monkeypatch):
    cached = dnnlib.util.url_cache_path(detectors.INCEPTION.url)
    os.makedirs(os.path.dirname(cached))
    helpers.write_detector(os.path.dirname(cached), os.path.basename(cached))
    assert detectors.resolve_detector_file(detectors.INCEPTION, detector_dir=tmp_path / 'empty') == cached


def test_missing_detector_offline_names_file_url_and_option(tmp_path, cache_dir, no_downloads):
    with pytest.raises(detectors.DetectorUnavailableError) as info:
        detectors.resolve_detector_file(detectors.VGG16, detector_dir=tmp_path / 'empty')
    message = str(info.value)
    assert '\n' not in message
    for part in ('vgg16.pt', detectors.VGG16.url, '--detector-dir', 'SQUEEZEGAN_DETECTOR_DIR', str(tmp_path / 'empty')):
        assert part in message


def test_stand_in_detector_follows_public_calling_convention(tmp_path):
    module = detectors.load_detector_file(helpers.write_detector(tmp_path, 'inception-2015-12-05.pt'), 'cpu')
    images = torch.randint(0, 256, [3, 3, 16, 16], dtype=torch.uint8)
    assert module(images, return_features=True).shape == (3, helpers.NUM_FEATURES)
    probs = module(images, no_output_bias=True)
    assert torch.allclose(probs.sum(dim=1), torch.ones(3))

#----------------------------------------------------------------------------
# Dataset statistics cache.


def _dataset_stats(opts):
    return metric_utils.compute_feature_stats_for_dataset(opts, detector=detectors.INCEPTION,
                                                          detector_kwargs=dict(return_features=True),
                                                          capture_mean_cov=True, capture_all=True, batch_size=5)


def _cache_files(cache_dir):
    folder = cache_dir / 'gan-metrics'
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def test_dataset_stats_are_read_back_from_cache_without_the_detector(tmp_path, cache_dir, monkeypatch):
    dataset_kwargs = helpers.write_image_folder(tmp_path / 'data', num_images=12)
    opts = _options(dataset_kwargs, helpers.write_detector_dir(tmp_path / 'detectors'))
    first = _dataset_stats(opts)
    assert len(_cache_files(cache_dir)) == 1

    class DetectorMustNotRun(torch.nn.Module):
        def forward(self, *args, **kwargs):
            raise AssertionError('detector ran although the statistics were cached')
    digest = detectors.detector_digest(os.path.join(opts.detector_dir, 'inception-2015-12-05.pt'))
    monkeypatch.setattr(opts, 'get_detector', lambda detector: (DetectorMustNotRun(), digest))
    second = _dataset_stats(opts)
    np.testing.assert_array_equal(second.get_all(), first.get_all())
    assert second.num_items == 12


def test_dataset_stats_cache_misses_when_images_are_added(tmp_path, cache_dir):
    dataset_kwargs = helpers.write_image_folder(tmp_path / 'data', num_images=12)
    opts = _options(dataset_kwargs, helpers.write_detector_dir(tmp_path / 'detectors'))
    _dataset_stats(opts)
    helpers.write_image_folder(tmp_path / 'data', num_images=14, seed=1)
    assert _dataset_stats(opts).num_items == 14
    assert len(_cache_files(cache_dir)) == 2


def test_dataset_stats_cache_misses_for_another_detector_file_or_option(tmp_path, cache_dir):
    dataset_kwargs = helpers.write_image_folder(tmp_path / 'data', num_images=8)
    first = _dataset_stats(_options(dataset_kwargs, helpers.write_detector_dir(tmp_path / 'det-a', seed=0)))
    other = _dataset_stats(_options(dataset_kwargs, helpers.write_detector_dir(tmp_path / 'det-b', seed=5)))
    assert not np.allclose(first.get_all(), other.get_all())
    mirrored = _dataset_stats(_options(dnnlib.EasyDict(dataset_kwargs, xflip=True), helpers.write_detector_dir(tmp_path / 'det-a')))
    assert mirrored.num_items == 16
    assert len(_cache_files(cache_dir)) == 3


def test_cache_disabled_writes_nothing(tmp_path, cache_dir):
    dataset_kwargs = helpers.write_image_folder(tmp_path / 'data', num_images=6)
    _dataset_stats(_options(dataset_kwargs, helpers.write_detector_dir(tmp_path / 'detectors'), cache=False))
    assert _cache_files(cache_dir) == []


def test_feature_stats_round_trip_through_npz(tmp_path):
    stats = FeatureStats(capture_all=True, capture_mean_cov=True, max_items=10)
    stats.append(np.arange(24, dtype=np.float32).reshape(8, 3))
    stats.save(tmp_path / 'stats.npz')
    loaded = FeatureStats.load(tmp_path / 'stats.npz')
    np.testing.assert_array_equal(loaded.get_all(), stats.get_all())
    for a, b in zip(loaded.get_mean_cov(), stats.get_mean_cov()):
        np.testing.assert_array_equal(a, b)
    assert (loaded.max_items, loaded.num_items) == (10, 8)

#----------------------------------------------------------------------------
# Whole metrics on stand-ins.


def test_generator_features_come_in_batches_up_to_the_requested_count(tmp_path, cache_dir):
    dataset_kwargs = helpers.write_image_folder(tmp_path / 'data', num_images=8, num_classes=3)
    opts = _options(dataset_kwargs, helpers.write_detector_dir(tmp_path / 'detectors'))
    opts.G = helpers.StandInGenerator(c_dim=3)
    stats = metric_utils.compute_feature_stats_for_generator(opts, detectors.INCEPTION, dict(return_features=True),
                                                             max_items=50, batch_size=16, capture_all=True)
    assert stats.get_all().shape == (50, helpers.NUM_FEATURES)


def test_calc_metric_fid_is_deterministic_for_the_same_generator(tmp_path, cache_dir):
    dataset_kwargs = helpers.write_image_folder(tmp_path / 'data', num_images=30)
    folder = helpers.write_detector_dir(tmp_path / 'detectors')
    kwargs = dict(G=helpers.StandInGenerator(), dataset_kwargs=dataset_kwargs, device='cpu', detector_dir=folder)
    first = metric_main.calc_metric('fid1k_full', **kwargs)
    again = metric_main.calc_metric('fid1k_full', **kwargs)
    assert first.metric == 'fid1k_full' and set(first.results) == {'fid1k_full'}
    assert first.results.fid1k_full == again.results.fid1k_full > 0
    assert first.num_gpus == 1 and isinstance(first.total_time_str, str)


def test_calc_metric_every_family_returns_its_named_results(tmp_path, cache_dir):
    dataset_kwargs = helpers.write_image_folder(tmp_path / 'data', num_images=20)
    kwargs = dict(G=helpers.StandInGenerator(), dataset_kwargs=dataset_kwargs, device='cpu',
                  detector_dir=helpers.write_detector_dir(tmp_path / 'detectors'))
    assert set(metric_main.calc_metric('kid1k', **kwargs).results) == {'kid1k'}
    pr = metric_main.calc_metric('pr1k3_full', **kwargs).results
    assert set(pr) == {'pr1k3_full_precision', 'pr1k3_full_recall'} and 0 <= pr.pr1k3_full_precision <= 1
    inception = metric_main.calc_metric('is1k', **kwargs).results
    assert set(inception) == {'is1k_mean', 'is1k_std'} and 1 <= inception.is1k_mean <= helpers.NUM_CLASSES


def test_calc_metric_rejects_unknown_name_listing_accepted_ones():
    with pytest.raises(ValueError, match="unknown metric 'fid50'.*fid50k_full"):
        metric_main.calc_metric('fid50', G=None)


def test_registry_accepts_issue_names_and_other_sample_counts():
    for name in metric_main.list_valid_metrics() + ['fid3k_full', 'kid10k_full', 'pr10k3_full', 'is10k']:
        assert metric_main.is_valid_metric(name), name
    for name in ['fid', 'fid0k_full', 'pr10k_full', 'ppl_xend', 'is50k_full', 'FID50K_FULL']:
        assert not metric_main.is_valid_metric(name), name


@persistence.persistent_class  # Copies made by the metrics keep this class (and its calls list).
class _RecordingSynthesis(helpers.StandInSynthesis):
    """Linear images in w; records the ws it is given (class attribute: survives the metric's deepcopy)."""
    calls = []

    def forward(self, ws, noise_mode='const', force_fp32=False):
        _RecordingSynthesis.calls.append(ws.clone())
        return self.fc(ws[:, 0]).reshape([-1, self.img_channels, self.img_resolution, self.img_resolution])


class _FlattenLpips(torch.nn.Module):
    def forward(self, img: torch.Tensor, resize_images: bool = True, return_lpips: bool = False) -> torch.Tensor:
        return img.flatten(1)


def test_ppl_in_w_equals_squared_image_change_per_epsilon(tmp_path, cache_dir):
    G = helpers.StandInGenerator()
    G.synthesis = _RecordingSynthesis(G.w_dim, G.img_resolution, G.img_channels)
    folder = tmp_path / 'detectors'
    helpers.write_detector(folder, 'vgg16.pt', module=_FlattenLpips())
    opts = metric_utils.MetricOptions(G=G, device='cpu', detector_dir=str(folder))
    _RecordingSynthesis.calls.clear()
    epsilon = 1e-2
    ppl = perceptual_path_length.compute_ppl(opts, num_samples=6, epsilon=epsilon, space='w', sampling='full', crop=False, batch_size=2)

    # Recompute from the recorded ws: image (in [0, 255] units) is linear in w, LPIPS stand-in is the identity.
    expected = []
    for ws in _RecordingSynthesis.calls:
        with torch.no_grad():
            img = G.synthesis.fc(ws[:, 0]) * 127.5
        a, b = img.chunk(2)
        expected.append(((a - b).square().sum(dim=1) / epsilon ** 2).double())
    assert len(_RecordingSynthesis.calls) == 3
    assert ppl == pytest.approx(perceptual_path_length.trimmed_mean(torch.cat(expected).numpy()), rel=1e-4)


def test_ppl_of_real_generator_is_finite_and_leaves_its_noise_buffers_alone(tmp_path, cache_dir):
    G = helpers.real_tiny_generator()
    noise_before = {name: buf.clone() for name, buf in G.named_buffers() if name.endswith('noise_const')}
    opts = metric_utils.MetricOptions(G=G, device='cpu', detector_dir=helpers.write_detector_dir(tmp_path / 'detectors'))
    for space in ('z', 'w'):
        ppl = perceptual_path_length.compute_ppl(opts, num_samples=8, epsilon=1e-4, space=space, sampling='end', crop=True, batch_size=4)
        assert np.isfinite(ppl) and ppl > 0
    assert noise_before and all(torch.equal(buf, noise_before[name]) for name, buf in G.named_buffers() if name in noise_before)
