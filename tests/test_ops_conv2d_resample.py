"""CPU tests of conv2d_resample: each resampling path against upfirdn2d + torch.nn.functional.conv2d, and gradients."""

import itertools

import pytest
import torch

from torch_utils.ops import conv2d_resample, upfirdn2d
from tests.ops_helpers import randn

F = torch.nn.functional
FILTER = upfirdn2d.setup_filter([1, 3, 3, 1])
CASES = list(itertools.product([1, 3, 4], [[1, 1, 1, 1], [2, 0, 1, 3]], [True, False], [1, 2]))

#----------------------------------------------------------------------------

def _weights(kernel, flip_weight):
    """The same kernel as conv2d_resample will apply it: flip_weight=False means a true convolution."""
    return kernel if flip_weight else kernel.flip([2, 3])


@pytest.mark.parametrize('k, padding, flip_weight, groups', CASES)
def test_plain_conv_is_conv2d_of_padded_input(k, padding, flip_weight, groups):
    x, w = randn(2, 4, 7, 6), randn(6, 4 // groups, k, k, seed=1)
    y = conv2d_resample.conv2d_resample(x, w, FILTER, padding=padding, groups=groups, flip_weight=flip_weight)
    torch.testing.assert_close(y, F.conv2d(F.pad(x, padding), _weights(w, flip_weight), groups=groups))


@pytest.mark.parametrize('k, padding, flip_weight, groups', CASES)
def test_upsampling_conv_is_upsample2d_then_conv2d(k, padding, flip_weight, groups):
    # The up path runs a strided transposed convolution and filters afterwards; same result.
    x, w = randn(2, 4, 5, 6), randn(6, 4 // groups, k, k, seed=1)
    y = conv2d_resample.conv2d_resample(x, w, FILTER, up=2, padding=padding, groups=groups, flip_weight=flip_weight)
    expected = F.conv2d(upfirdn2d.upsample2d(x, FILTER, padding=padding), _weights(w, flip_weight), groups=groups)
    torch.testing.assert_close(y, expected)


@pytest.mark.parametrize('k, padding, flip_weight, groups', CASES)
def test_downsampling_conv_is_filter_conv2d_then_decimation(k, padding, flip_weight, groups):
    # The down path filters, then runs a stride-2 convolution; here stride 1 and slicing instead.
    x, w = randn(2, 4, 7, 8), randn(6, 4 // groups, k, k, seed=1)
    y = conv2d_resample.conv2d_resample(x, w, FILTER, down=2, padding=padding, groups=groups, flip_weight=flip_weight)
    filtered = upfirdn2d.upfirdn2d(F.pad(x, padding), FILTER, padding=1)
    expected = F.conv2d(filtered, _weights(w, flip_weight), groups=groups)[:, :, ::2, ::2]
    torch.testing.assert_close(y, expected)


def test_up_and_down_together_upsample_convolve_then_downsample():
    x, w = randn(1, 3, 5, 5), randn(2, 3, 3, 3, seed=1)
    y = conv2d_resample.conv2d_resample(x, w, FILTER, up=2, down=2, padding=1, flip_weight=False)
    upsampled = upfirdn2d.upsample2d(x, FILTER, padding=2)  # The down filter's own padding is added on the up side.
    expected = upfirdn2d.upfirdn2d(F.conv2d(upsampled, w.flip([2, 3])), FILTER, down=2)
    torch.testing.assert_close(y, expected)


def test_stylegan2_layer_shapes():
    x = randn(2, 4, 8, 8)
    w3, w1 = randn(5, 4, 3, 3, seed=1), randn(5, 4, 1, 1, seed=2)
    assert conv2d_resample.conv2d_resample(x, w3, FILTER, up=2, padding=1, flip_weight=False).shape == (2, 5, 16, 16)
    assert conv2d_resample.conv2d_resample(x, w3, FILTER, down=2, padding=1).shape == (2, 5, 4, 4)
    assert conv2d_resample.conv2d_resample(x, w1, FILTER, down=2).shape == (2, 5, 4, 4)
    assert conv2d_resample.conv2d_resample(x, w3, padding=1).shape == (2, 5, 8, 8)


def test_grouped_conv_equals_one_conv_per_group():
    # Modulated convolution applies per-sample weights as groups.
    x, w = randn(1, 6, 5, 5), randn(4, 3, 3, 3, seed=1)
    y = conv2d_resample.conv2d_resample(x, w, FILTER, up=2, padding=1, groups=2, flip_weight=False)
    parts = [conv2d_resample.conv2d_resample(x[:, 3 * g:3 * g + 3], w[2 * g:2 * g + 2], FILTER, up=2, padding=1, flip_weight=False) for g in range(2)]
    torch.testing.assert_close(y, torch.cat(parts, dim=1))

#----------------------------------------------------------------------------

@pytest.mark.parametrize('up, down, k', [(2, 1, 3), (1, 2, 3), (1, 2, 1), (1, 1, 3)])
def test_conv2d_resample_gradients_first_and_second_order(up, down, k):
    x = randn(1, 2, 5, 5, requires_grad=True)
    w = randn(2, 2, k, k, seed=1, requires_grad=True)
    func = lambda x, w: conv2d_resample.conv2d_resample(x, w, FILTER, up=up, down=down, padding=k // 2, flip_weight=(up == 1))
    # fast_mode checks random projections of the Jacobians: the full ones cost ~10x more here.
    assert torch.autograd.gradcheck(func, [x, w], fast_mode=True)
    assert torch.autograd.gradgradcheck(func, [x, w], fast_mode=True)
