"""FID and KID compute what stylegan2-ada-pytorch's metric code computes on two fixed picture sets with a shared
stand-in detector (numbers recorded by tests/reference/record_metrics.py)."""

import json

import pytest

from metrics import frechet_inception_distance, kernel_inception_distance, metric_utils
from tests import metrics_helpers as helpers
from tests.reference import record_metrics as recording

with open(recording.OUT, encoding='utf-8') as _f:
    RECORDED = json.load(_f)


@pytest.fixture
def options(tmp_path):
    detector_dir = helpers.write_detector_dir(tmp_path / 'detectors')
    assert recording.weights_sha256(f'{detector_dir}/inception-2015-12-05.pt') == RECORDED['detector_weights_sha256']
    reals, fakes = recording.image_sets()
    dataset_kwargs = helpers.dataset_kwargs_for(recording.write_png_folder(str(tmp_path / 'reals'), reals))
    return lambda: metric_utils.MetricOptions(G=recording.ReplayGenerator(fakes), dataset_kwargs=dataset_kwargs,
                                              device='cpu', cache=False, detector_dir=detector_dir)


def test_fid_matches_stylegan2_ada(options):
    fid = frechet_inception_distance.compute_fid(options(), max_real=None, num_gen=recording.NUM_IMAGES)
    assert fid == pytest.approx(RECORDED['fid'], rel=1e-5)


def test_kid_matches_stylegan2_ada(options):
    kid = kernel_inception_distance.compute_kid(options(), max_real=None, num_gen=recording.NUM_IMAGES,
                                                num_subsets=recording.KID_SUBSETS, max_subset_size=recording.NUM_IMAGES)
    assert kid == pytest.approx(RECORDED['kid'], rel=1e-5)
