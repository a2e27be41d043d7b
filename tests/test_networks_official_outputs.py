"""Our G and D compute what stylegan2-ada-pytorch computes for the same weights (values recorded from its code)."""

# The expected numbers are recorded from stylegan2-ada-pytorch's own training/networks.py by
# tests/reference/record_stylegan2_ada.py (its commit and torch version are in the JSON beside it), on the same
# construction arguments, weights filled by `fill_deterministically` and the inputs of `conditional_outputs`. Every
# image value and logit is compared; fp32 sums in another order differ by <= 2.4e-7 (measured), the bound is 1e-6.

import json

import pytest
import torch

from tests.reference import record_stylegan2_ada as recording
from training import networks

with open(recording.OUT, encoding='utf-8') as _f:
    RECORDED = json.load(_f)['conditional']


@pytest.mark.parametrize('arch', ['skip', 'resnet'])
def test_generator_and_discriminator_reproduce_stylegan2_ada_outputs(arch):
    ours = recording.conditional_outputs(networks, arch)
    expected = RECORDED[arch]
    assert len(ours['img']) == len(expected['img']) == 2 * 3 * 8 * 8
    assert torch.allclose(torch.tensor(ours['img']), torch.tensor(expected['img']), atol=1e-6, rtol=0)
    assert torch.allclose(torch.tensor(ours['logits']), torch.tensor(expected['logits']), atol=1e-6, rtol=0)
