"""transfer_weights: copying by name where shapes match, and a report of what was copied and what kept its init."""

import io

import pytest
import torch

from tests import legacy_helpers as helpers
from training import legacy
from training.transfer import TransferReport, transfer_weights


def all_tensors(module):
    return {name: tensor.detach().clone()
            for name, tensor in list(module.named_parameters()) + list(module.named_buffers())}


def small_mlp(hidden=4, out=3, seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(2, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, out),
                              torch.nn.BatchNorm1d(out))
    with torch.no_grad():
        net[3].running_mean.normal_()
    return net

#----------------------------------------------------------------------------
# Generic behaviour (plain torch modules).


def test_identical_architectures_copy_every_parameter_and_buffer():
    src, dst = small_mlp(seed=0), small_mlp(seed=1)
    report = transfer_weights(src, dst)
    assert report.copied == list(all_tensors(dst)) and report.initialised == []
    assert all(torch.equal(all_tensors(dst)[name], tensor) for name, tensor in all_tensors(src).items())


def test_shape_mismatches_are_initialised_untouched_and_reported():
    src, dst = small_mlp(out=3, seed=0), small_mlp(out=5, seed=1)
    before = all_tensors(dst)
    report = transfer_weights(src, dst)
    assert report.copied == ['0.weight', '0.bias', '3.num_batches_tracked']
    assert report.initialised == ['2.weight', '2.bias', '3.weight', '3.bias', '3.running_mean', '3.running_var']
    assert report.mismatched['2.weight'] == ((3, 4), (5, 4))
    after = all_tensors(dst)
    assert all(torch.equal(after[name], before[name]) for name in report.initialised)


def test_source_tensors_without_a_destination_are_listed_as_unused():
    src = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    dst = torch.nn.Sequential(torch.nn.Linear(2, 2))
    report = transfer_weights(src, dst)
    assert report.copied == ['0.weight', '0.bias'] and report.unused == ['1.weight', '1.bias']


def test_a_state_dict_is_accepted_as_source_and_dtype_follows_the_destination():
    src = torch.nn.Linear(3, 2).double()
    dst = torch.nn.Linear(3, 2)
    report = transfer_weights(src.state_dict(), dst)
    assert report.copied == ['weight', 'bias']
    assert dst.weight.dtype == torch.float32
    assert torch.allclose(dst.weight, src.weight.float())


def test_copy_does_not_change_requires_grad_or_record_autograd_history():
    src, dst = torch.nn.Linear(2, 2).requires_grad_(False), torch.nn.Linear(2, 2)
    transfer_weights(src, dst)
    assert dst.weight.requires_grad and dst.weight.grad_fn is None


def test_non_module_source_is_a_type_error_naming_the_type():
    with pytest.raises(TypeError, match='got list'):
        transfer_weights([1, 2], torch.nn.Linear(2, 2))


def test_report_summary_and_listing_name_every_tensor():
    report = transfer_weights(small_mlp(out=3), small_mlp(out=5))
    assert report.summary().startswith(f'transferred {len(report.copied)} tensors, kept {len(report.initialised)}')
    listing = report.describe()
    for name in report.copied + report.initialised:
        assert name in listing
    assert 'initialised  2.weight (shape [3, 4] -> [5, 4])' in listing
    assert isinstance(report, TransferReport)

#----------------------------------------------------------------------------
# Generators.


def test_skip_generator_into_squeeze_generator_reuses_mapping_const_and_first_convs():
    from training import networks
    src = helpers.make_networks(seed=0)['G_ema']
    torch.manual_seed(5)
    dst = networks.Generator(**helpers.generator_kwargs(architecture='squeeze'))
    before = all_tensors(dst)
    report = transfer_weights(src, dst)

    assert sorted(report.copied + report.initialised) == sorted(before)
    assert not set(report.copied) & set(report.initialised)
    for name in ('mapping.fc0.weight', 'mapping.fc1.weight', 'mapping.w_avg', 'synthesis.b4.const',
                 'synthesis.b4.conv1.weight', 'synthesis.b4.conv1.affine.weight', 'synthesis.b8.conv0.weight'):
        assert name in report.copied, name
    assert any('torgb' in name for name in report.initialised)
    src_tensors, after = all_tensors(src), all_tensors(dst)
    assert all(torch.equal(after[name], src_tensors[name]) for name in report.copied)
    assert all(torch.equal(after[name], before[name]) for name in report.initialised)


def test_official_pickle_generator_transfers_completely_into_the_same_architecture():
    from training import networks
    snapshot = helpers.make_networks(seed=2)
    loaded = legacy.load_network_pkl(io.BytesIO(helpers.official_pickle_bytes(snapshot)))
    torch.manual_seed(9)
    dst = networks.Generator(**helpers.generator_kwargs()).eval()
    report = transfer_weights(loaded['G_ema'], dst)
    assert report.initialised == [] and report.unused == []
    assert torch.equal(helpers.generator_output(dst), helpers.generator_output(snapshot['G_ema']))


def test_discriminator_with_other_channel_widths_copies_only_matching_shapes():
    from training import networks
    src = helpers.make_networks(seed=0)['D']
    wider = dict(helpers.discriminator_kwargs(), channel_max=64, channel_base=1024)
    dst = networks.Discriminator(**wider)
    report = transfer_weights(src, dst)
    assert report.mismatched and report.initialised
    assert set(report.mismatched) <= set(report.initialised)
    src_tensors, after = all_tensors(src), all_tensors(dst)
    assert all(torch.equal(after[name], src_tensors[name]) for name in report.copied)
