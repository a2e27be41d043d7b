"""CPU tests of the upfirdn2d reference: against its definition, torch.nn.functional, and gradcheck to second order."""

import numpy as np
import pytest
import torch

from torch_utils.ops import upfirdn2d
from tests.ops_helpers import naive_upfirdn2d, randn

#----------------------------------------------------------------------------

@pytest.mark.parametrize('taps, separable, up, down, padding, flip_filter, gain', [
    ([1, 3, 3, 1], False, (2, 2), (1, 1), (2, 1, 2, 1), False, 4),
    ([1, 3, 3, 1], True, (1, 1), (2, 2), (1, 1, 1, 1), False, 1),
    ([1, 2, 5], False, (3, 1), (1, 2), (0, 2, -1, 3), True, 1.5),
    ([[1, 2], [0, -1], [3, 1]], None, (1, 2), (2, 1), (1, 0, 0, 2), False, 1),
    ([[1, 2], [0, -1], [3, 1]], None, (2, 1), (1, 1), (-1, 1, 1, 0), True, 0.5),
])
def test_upfirdn2d_matches_loop_definition(taps, separable, up, down, padding, flip_filter, gain):
    x = randn(2, 3, 5, 7)
    f = upfirdn2d.setup_filter(taps, separable=separable, normalize=False)
    y = upfirdn2d.upfirdn2d(x, f, up=list(up), down=list(down), padding=list(padding), flip_filter=flip_filter, gain=gain)
    expected = naive_upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    assert y.shape == expected.shape
    torch.testing.assert_close(y, expected)


def test_separable_and_2d_filters_give_the_same_result():
    x = randn(1, 2, 6, 5)
    f1 = upfirdn2d.setup_filter([1, 3, 3, 1], separable=True)
    f2 = upfirdn2d.setup_filter([1, 3, 3, 1], separable=False)
    assert f1.ndim == 1 and f2.ndim == 2
    torch.testing.assert_close(upfirdn2d.upsample2d(x, f1), upfirdn2d.upsample2d(x, f2))
    torch.testing.assert_close(upfirdn2d.downsample2d(x, f1), upfirdn2d.downsample2d(x, f2))


def test_setup_filter_normalizes_flips_and_applies_gain():
    f = upfirdn2d.setup_filter([1, 2, 3], flip_filter=True, gain=4)
    expected = torch.outer(torch.tensor([3., 2., 1.]), torch.tensor([3., 2., 1.])) / 36 * 4
    torch.testing.assert_close(f, expected)
    assert f.dtype == torch.float32
    assert upfirdn2d.setup_filter(list(range(1, 9))).ndim == 1  # 8+ taps stay separable by default.
    torch.testing.assert_close(upfirdn2d.setup_filter([1, 1], separable=True, gain=4).sum(), torch.tensor(2.))

#----------------------------------------------------------------------------
# Against direct torch.nn.functional compositions.

def test_upsample2d_with_box_filter_is_nearest_neighbour():
    x = randn(2, 3, 4, 5)
    y = upfirdn2d.upsample2d(x, upfirdn2d.setup_filter([1, 1]))
    torch.testing.assert_close(y, torch.nn.functional.interpolate(x, scale_factor=2, mode='nearest'))


def test_downsample2d_with_box_filter_is_average_pooling():
    x = randn(2, 3, 6, 8)
    y = upfirdn2d.downsample2d(x, upfirdn2d.setup_filter([1, 1]))
    torch.testing.assert_close(y, torch.nn.functional.avg_pool2d(x, 2))


def test_filter2d_is_same_size_depthwise_correlation_with_flipped_filter():
    x = randn(1, 3, 7, 6)
    taps = torch.tensor([[1., 2., 0.], [0., -1., 3.], [2., 1., 1.]])
    f = upfirdn2d.setup_filter(taps, normalize=False)
    y = upfirdn2d.filter2d(x, f)
    weight = taps.flip([0, 1]).to(x.dtype)[None, None].repeat(3, 1, 1, 1)
    expected = torch.nn.functional.conv2d(x, weight, padding=1, groups=3)
    torch.testing.assert_close(y, expected)
    y_flip = upfirdn2d.filter2d(x, f, flip_filter=True)
    torch.testing.assert_close(y_flip, torch.nn.functional.conv2d(x, taps.to(x.dtype)[None, None].repeat(3, 1, 1, 1), padding=1, groups=3))


def test_per_axis_up_and_down_factors_give_per_axis_sizes():
    x = randn(1, 1, 6, 6)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    assert upfirdn2d.upsample2d(x, f, up=[2, 1]).shape == (1, 1, 6, 12)
    assert upfirdn2d.downsample2d(x, f, down=[1, 3]).shape == (1, 1, 2, 6)
    assert upfirdn2d.filter2d(x, f, padding=[1, 2, 0, 3]).shape == (1, 1, 9, 9)


def test_upfirdn2d_without_filter_is_zero_insertion_and_padding():
    x = randn(1, 1, 2, 3)
    y = upfirdn2d.upfirdn2d(x, None, up=2, padding=[0, 1, 1, 0])
    expected = torch.zeros(1, 1, 5, 7, dtype=x.dtype)
    expected[:, :, 1:5:2, 0:6:2] = x
    torch.testing.assert_close(y, expected)


def test_cuda_impl_on_cpu_tensor_uses_reference_silently(recwarn):
    x = randn(1, 2, 5, 5)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    torch.testing.assert_close(upfirdn2d.upsample2d(x, f, impl='cuda'), upfirdn2d.upsample2d(x, f, impl='ref'))
    assert len(recwarn) == 0


def test_bad_padding_and_impl_are_rejected_with_the_accepted_values():
    x = randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match=r'padding must be an int, \[x, y\] or \[x0, x1, y0, y1\]'):
        upfirdn2d.upfirdn2d(x, None, padding=[1, 2, 3])
    with pytest.raises(ValueError, match='impl must be "ref" or "cuda"'):
        upfirdn2d.upfirdn2d(x, None, impl='triton')

#----------------------------------------------------------------------------
# Gradients, first and second order, in float64.

@pytest.mark.parametrize('separable, up, down, padding, flip_filter, gain', [
    (False, 2, 1, [2, 1, 1, 2], False, 4),
    (True, 1, 2, [1, 2, 0, 1], True, 1),
    (False, [1, 2], [3, 1], [0, 1, -1, 2], True, 0.7),
])
def test_upfirdn2d_gradients_first_and_second_order(separable, up, down, padding, flip_filter, gain):
    x = randn(1, 1, 5, 4, requires_grad=True)
    f = upfirdn2d.setup_filter([1, 2, 4], separable=separable)
    func = lambda x: upfirdn2d.upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    assert torch.autograd.gradcheck(func, [x])
    assert torch.autograd.gradgradcheck(func, [x], fast_mode=True)  # Random projections; the full check costs ~10x.

#----------------------------------------------------------------------------

def test_filter_stays_float32_for_float64_images():
    # The filter taps are float32 buffers in networks; the op casts them to the image dtype.
    x = randn(1, 1, 4, 4)
    assert upfirdn2d.filter2d(x, upfirdn2d.setup_filter([1, 2, 1])).dtype == torch.float64
    assert np.isclose(upfirdn2d.filter2d(torch.ones(1, 1, 6, 6), upfirdn2d.setup_filter([1, 2, 1]))[0, 0, 3, 3].item(), 1)
