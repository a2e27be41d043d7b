"""Transitional conditioning: networks and loss held to the transitional-cGAN code (numbers recorded by
tests/reference/record_transitional.py), the schedule, the flags, and the buffers a training run moves."""

import io
import json

import pytest
import torch
from click.testing import CliRunner

import dnnlib
import train
from tests import legacy_helpers
from tests import objective_helpers
from tests.reference import record_transitional as recording
from tests.train_helpers import TINY_ARGS, final_snapshot_tensors, tiny_config, tiny_options, write_image_folder
from training import export
from training import legacy
from training import networks
from training.cli import launch as train_launch
from training.cli.config import ConfigError, resolve_config
from training.loss import StyleGAN2Loss
from training.transition import CondLogitLoss, transition_at

with open(recording.OUT, encoding='utf-8') as _f:
    RECORDED = json.load(_f)


def our_networks():
    return recording.build(networks, recording.OUR_OPTIONS)

#----------------------------------------------------------------------------
# Held to the reference.

@pytest.mark.parametrize('transition', sorted(RECORDED['outputs']))
def test_images_and_both_logits_match_the_reference_at_each_transition(transition):
    ours = recording.outputs(*our_networks())[transition]
    expected = RECORDED['outputs'][transition]
    for key in ('img', 'uncond', 'cond'):  # Measured <= 2.4e-7 (images up to 2.5), torch 2.13.0+cpu.
        assert torch.allclose(torch.tensor(ours[key]), torch.tensor(expected[key]), atol=1e-6, rtol=0), key


@pytest.fixture(scope='module')
def our_gradients():
    def make_loss(G, D):
        loss = StyleGAN2Loss('cpu', G, D, **recording.base.LOSS_KWARGS,
                             extra_terms=[CondLogitLoss(side) for side in ('G', 'fake', 'real')])
        return lambda phase, real_img, real_c, gen_z, gen_c, gain: loss.accumulate_gradients(
            phase, real_img, real_c, gen_z, gen_c, gain=gain, cur_nimg=0)
    return {f'{value:g}': recording.phase_gradients(make_loss, networks, recording.OUR_OPTIONS, value)
            for value in recording.LOSS_TRANSITIONS}


@pytest.mark.parametrize('phase', recording.base.PHASES)
@pytest.mark.parametrize('transition', sorted(RECORDED['gradients']))
def test_loss_phase_gradients_match_the_reference(our_gradients, transition, phase):
    """Every gradient, also the zero ones R1 gives the conditional path (the reference's sliced logits)."""
    expected, ours = RECORDED['gradients'][transition][phase], our_gradients[transition][phase]
    assert sorted(ours) == sorted(expected)
    for name, (norm, projection) in expected.items():  # Measured: relative <= 4e-6 where the norm is above 1e-12.
        assert ours[name][0] == pytest.approx(norm, rel=1e-5, abs=1e-12), (transition, phase, name)
        assert ours[name][1] == pytest.approx(projection, abs=1e-5 * norm + 1e-12), (transition, phase, name)

#----------------------------------------------------------------------------
# What the transition does.

def test_at_zero_the_label_changes_nothing_and_at_one_it_changes_images():
    G, D = our_networks()
    z = torch.randn([2, 8], generator=torch.Generator().manual_seed(0))
    one, other = torch.eye(2)[[0, 0]], torch.eye(2)[[1, 1]]
    with torch.no_grad():
        recording.set_transition(G, D, 0.0)
        assert torch.equal(G(z, one, noise_mode='const'), G(z, other, noise_mode='const'))
        img = G(z, one, noise_mode='const')
        assert torch.equal(D(img, one)[0], D(img, other)[0])  # The unconditional logit ignores labels.
        recording.set_transition(G, D, 1.0)
        assert not torch.allclose(G(z, one, noise_mode='const'), G(z, other, noise_mode='const'), atol=1e-3)
        assert not torch.allclose(D(img, one)[1]['cond_logits'], D(img, other)[1]['cond_logits'], atol=1e-4)


def test_the_conditional_loss_is_weighted_by_ds_transition():
    G, D = our_networks()
    logits = torch.tensor([[0.3], [-1.2]])
    ctx = dict(heads=({'cond_logits': logits},), D=D, phase='Dmain')
    losses = {}
    for value in (0.0, 0.5, 1.0):
        recording.set_transition(G, D, value)
        losses[value] = CondLogitLoss('fake')(dnnlib.EasyDict(ctx))
    assert torch.equal(losses[0.0], torch.zeros(2))
    assert torch.allclose(losses[1.0], torch.nn.functional.softplus(logits).flatten())
    assert torch.allclose(losses[0.5] * 2, losses[1.0])


def test_the_r1_pass_alone_adds_no_zeros_to_the_conditional_statistics():
    G, D = our_networks()
    recording.set_transition(G, D, 0.5)
    loss = StyleGAN2Loss('cpu', G, D, **recording.base.LOSS_KWARGS,
                         extra_terms=[CondLogitLoss(side) for side in ('G', 'fake', 'real')])
    counts = {}
    for phase in ('Dreg', 'Dmain'):
        collector = objective_helpers.collect(lambda phase=phase: loss.accumulate_gradients(
            phase, *recording.phase_inputs(), gain=1, cur_nimg=0), regex='Loss/(D/cond_real|scores/real_cond)')
        counts[phase] = (collector.num('Loss/D/cond_real'), collector.num('Loss/scores/real_cond'))
    assert counts == {'Dreg': (0, 0), 'Dmain': (4, 4)}


def test_schedule_is_linear_between_start_and_end_and_a_step_when_they_meet():
    assert [transition_at(n, 2, 6) for n in (0, 1999, 2000, 3000, 5000, 6000, 9000)] == \
        [0.0, 0.0, 0.0, 0.25, 0.75, 1.0, 1.0]
    assert [transition_at(n, 4, 4) for n in (3999, 4000)] == [0.0, 1.0]


def test_a_loss_without_the_conditional_head_says_what_it_needs():
    with pytest.raises(ValueError, match='cond_transition'):
        CondLogitLoss('G')(dnnlib.EasyDict(dict(heads=(), D=None, phase='Gmain')))
    with pytest.raises(ValueError, match='side must be one of G, fake, real'):
        CondLogitLoss('both')


def test_networks_refuse_a_transition_without_labels():
    with pytest.raises(ValueError, match='needs a latent and a label'):
        networks.MappingNetwork(z_dim=8, c_dim=0, w_dim=8, num_ws=2, cond_transition=True)
    with pytest.raises(ValueError, match='needs a label'):
        networks.Discriminator(0, 16, 3, cond_transition=True)


def test_a_discriminator_head_pickled_before_transitional_conditioning_still_runs():
    D = networks.Discriminator(2, 8, 3, channel_base=64, channel_max=8, epilogue_kwargs=dict(mbstd_group_size=2))
    img, c = torch.zeros([2, 3, 8, 8]), torch.eye(2)
    expected = D(img, c)
    del D.b4.__dict__['out_uncond']  # What unpickling an older head leaves.
    assert torch.equal(D(img, c), expected)

#----------------------------------------------------------------------------
# Flags and training.

@pytest.fixture(scope='module')
def labelled16(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp('data') / 'lab16', num_images=8, resolution=16, labels=[0, 1])


def test_flags_build_both_networks_the_three_terms_and_the_span(tmp_path, labelled16):
    c = resolve_config(tiny_options(tmp_path / 'runs', labelled16, cond=True, t_start_kimg=1, t_end_kimg=3))
    assert c.cond_transition == [1.0, 3.0]
    assert c.G_kwargs.mapping_kwargs.cond_transition is True and c.D_kwargs.cond_transition is True
    assert [(term.class_name, term.side) for term in c.loss_kwargs.extra_terms] == \
        [('training.transition.CondLogitLoss', side) for side in ('G', 'fake', 'real')]
    assert '-trans1-3-' in c.run_desc
    plain = resolve_config(tiny_options(tmp_path / 'runs', labelled16, cond=True))
    # A run without it has no new key anywhere: resuming a run written before it reports no difference.
    assert 'cond_transition' not in plain and 'cond_transition' not in plain.G_kwargs.mapping_kwargs
    assert 'cond_transition' not in plain.D_kwargs and not plain.loss_kwargs.get('extra_terms')


@pytest.mark.parametrize('options, message', [
    (dict(cond=True, t_start_kimg=1), '--t-start-kimg=1: transitional conditioning needs --t-end-kimg too'),
    (dict(cond=True, t_end_kimg=1), '--t-end-kimg=1: transitional conditioning needs --t-start-kimg too'),
    (dict(cond=True, t_start_kimg=3, t_end_kimg=1), '--t-end-kimg=1: must be >= --t-start-kimg=3'),
    (dict(t_start_kimg=1, t_end_kimg=2), 'it needs --cond=1'),
    (dict(cond=True, t_start_kimg=1, t_end_kimg=2, loss='rpgan'), 'cannot be used with --loss=rpgan'),
])
def test_inconsistent_flags_are_one_line_naming_them(tmp_path, labelled16, options, message):
    with pytest.raises(ConfigError) as error:
        resolve_config(tiny_options(tmp_path / 'runs', labelled16, **options))
    assert message in str(error.value) and '\n' not in str(error.value)


def test_training_moves_both_buffers_along_the_schedule_and_g_ema_follows(tmp_path, labelled16):
    from training import training_loop  # pylint: disable=import-outside-toplevel
    config = resolve_config(tiny_options(tmp_path / 'runs', labelled16, cond=True, t_start_kimg=0.004,
                                         t_end_kimg=0.012, batch=4))
    run = training_loop.build_run(dict(config, run_dir=None))
    run.preemption.uninstall()
    seen = []
    for _ in range(5):
        run.train_step()
        seen.append((float(run.nets.G.mapping.transition), float(run.nets.D.transition),
                     float(run.nets.G_ema.mapping.transition)))
    # Each step runs at the value of the images shown before it (0, 4, 8, 12, 16 images): 0, 0, 0.5, 1, 1.
    assert seen == [(0, 0, 0), (0, 0, 0), (0.5, 0.5, 0.5), (1, 1, 1), (1, 1, 1)]


def test_it_trains_beside_ggdr_whose_decoder_heads_share_ds_output(tmp_path, labelled16):
    from training import training_loop  # pylint: disable=import-outside-toplevel
    config = resolve_config(tiny_options(tmp_path / 'runs', labelled16, cond=True, t_start_kimg=0, t_end_kimg=0,
                                         reg_type='ggdr', ggdr_res=8))
    run = training_loop.build_run(dict(config, run_dir=None))
    run.preemption.uninstall()
    logits, heads = run.nets.D(torch.zeros([4, 3, 16, 16]), torch.eye(2)[[0, 1, 0, 1]])
    assert logits.shape == (4, 1) and heads['cond_logits'].shape == (4, 1) and heads['features'].shape[-1] == 8
    before = {name: param.clone() for name, param in run.nets.D.named_parameters()}
    run.train_step()
    moved = {name for name, param in run.nets.D.named_parameters() if not torch.equal(param, before[name])}
    assert {'b4.out.weight', 'b4.out_uncond.weight', 'decoder.dec8.weight'} <= moved, ' '.join(sorted(moved))


def test_train_py_runs_it_end_to_end_and_the_snapshot_holds_the_reached_transition(tmp_path, labelled16):
    """train.py builds conditional networks everywhere it builds them (its disk-room estimate too)."""
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', f'--data={labelled16}', *TINY_ARGS,
                                             '--cond=1', '--t-start-kimg=0', '--t-end-kimg=0.016'])
    assert result.exit_code == 0 and result.exception is None, result.output
    run_dir, = (tmp_path / 'runs').iterdir()
    snapshots = sorted(run_dir.glob('network-snapshot-*.pkl'))
    last = export.read_pickle(str(snapshots[-1]))
    # 24 images shown; the last step ran at 20 images: the transition there was 1.
    assert float(last['G'].mapping.transition) == float(last['D'].transition) == 1.0
    with open(run_dir / 'stats.jsonl', encoding='utf-8') as f:
        ticks = [json.loads(line) for line in f]
    # The first tick ends after one step, then every 8 images: the second tick's steps ran at 4 and 8 images shown
    # (transition 0.25 and 0.5).
    assert ticks[1]['Progress/transition']['mean'] == pytest.approx(0.375)
    for name in ('Loss/G/cond', 'Loss/D/cond_fake', 'Loss/D/cond_real', 'Loss/scores/fake_cond',
                 'Loss/scores/real_cond'):
        assert ticks[-1][name]['num'] > 0, name


def test_resume_in_the_middle_of_the_transition_is_bit_exact(tmp_path, labelled16):
    def config_for(outdir, **overrides):
        return tiny_config(outdir, labelled16, cond=True, t_start_kimg=0.004, t_end_kimg=0.012, aug='ada',
                           augpipe='bgc', tick=0.008, **overrides)
    uninterrupted = train_launch.start(config_for(tmp_path / 'a', kimg=0.016), env={})
    train_launch.start(config_for(tmp_path / 'b', kimg=0.008), env={})  # Stops at 8 images: transition 0.5.
    resumed = train_launch.start(config_for(tmp_path / 'b', kimg=0.016, resume='latest'), env={})
    expected, actual = final_snapshot_tensors(uninterrupted), final_snapshot_tensors(resumed)
    assert float(expected['D.transition']) == 1.0 and 'G.mapping.embed_proj.weight' in expected
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name

#----------------------------------------------------------------------------
# Pickles of the transitional-cGAN fork: stylegan2-ada-pytorch's layout with its own tensor names.

FORK_MODULE_NAMES = {'MappingNetwork': {'embed_proj': 'proj_embedd'},
                     'DiscriminatorEpilogue': {'out_uncond': 'out_uc', 'out': 'out_c'}}


def _as_the_fork_pickles(class_name, state):
    """Our pickled state as the fork writes it: its layer names, none of our constructor arguments."""
    state = dict(state)
    renames = dict(FORK_MODULE_NAMES.get(class_name, {}))
    if class_name == 'DiscriminatorEpilogue' and state['_modules'].get('out_uncond') is None:
        renames = {'out': 'out_uc'}  # Without labels the fork's only logit is `out_uc`.
    state['_modules'] = {renames.get(name, name): module for name, module in state['_modules'].items()
                         if module is not None}
    kwargs = dict(state['_init_kwargs'])
    kwargs.pop('cond_transition', None)
    if 'mapping_kwargs' in kwargs:
        kwargs['mapping_kwargs'] = {k: v for k, v in kwargs['mapping_kwargs'].items() if k != 'cond_transition'}
    state['_init_kwargs'] = kwargs
    return state


def test_the_forks_pickles_load_onto_our_classes_and_compute_the_same():
    G, D = our_networks()
    recording.set_transition(G, D, 0.6)
    plain_D = networks.Discriminator(**dict(recording.D_KWARGS, c_dim=0))
    data = dict(G=G, D=D, G_ema=G, augment_pipe=None, training_set_kwargs=None)
    loaded = legacy.load_network_pkl(io.BytesIO(legacy_helpers.official_pickle_bytes(data, tamper=_as_the_fork_pickles)))
    assert loaded['G'].mapping.cond_transition and loaded['D'].cond_transition
    assert float(loaded['G_ema'].mapping.transition) == float(loaded['D'].transition) == pytest.approx(0.6)
    z, c = torch.randn([2, 8], generator=torch.Generator().manual_seed(0)), torch.eye(2)
    with torch.no_grad():
        img = G(z, c, noise_mode='const')
        assert torch.equal(loaded['G_ema'](z, c, noise_mode='const'), img)
        (logits, heads), (loaded_logits, loaded_heads) = D(img, c), loaded['D'](img, c)
        assert torch.equal(loaded_logits, logits) and torch.equal(loaded_heads['cond_logits'], heads['cond_logits'])
        unconditional = legacy.load_network_pkl(io.BytesIO(legacy_helpers.official_pickle_bytes(
            dict(data, D=plain_D), tamper=_as_the_fork_pickles)))['D']
        assert not unconditional.cond_transition and torch.equal(unconditional(img, None), plain_D(img, None))


@pytest.mark.gpu
def test_phases_on_cuda_give_the_cpus_gradients(measured):
    """The transition buffers follow the networks to the device and weigh the conditional terms there too (noise
    and style mixing off: their random draws differ between the devices)."""
    def gradients(device):
        G, D = our_networks()
        recording.set_transition(G, D, 0.25)
        with torch.no_grad():
            for name, param in G.named_parameters():
                if name.endswith('noise_strength'):
                    param.zero_()
        G, D = G.to(device).train(), D.to(device).train()
        loss = StyleGAN2Loss(device, G, D, r1_gamma=1, style_mixing_prob=0, pl_weight=0,
                             extra_terms=[CondLogitLoss(side) for side in ('G', 'fake', 'real')])
        inputs = [t.to(device) for t in recording.phase_inputs()]
        result = {}
        for phase, module in (('Gmain', G), ('Dmain', D), ('Dreg', D)):
            G.requires_grad_(False)
            D.requires_grad_(False)
            module.requires_grad_(True)
            module.zero_grad(set_to_none=True)
            loss.accumulate_gradients(phase, *inputs, gain=1, cur_nimg=0)
            result[phase] = {name: float(p.grad.norm()) for name, p in module.named_parameters()
                             if p.grad is not None and not name.endswith('noise_strength')}  # The noise drawn.
        return result
    on_cpu, on_cuda = gradients('cpu'), gradients('cuda')
    for phase, norms in on_cpu.items():
        assert sorted(on_cuda[phase]) == sorted(norms) and ('mapping.embed_proj.weight' if phase == 'Gmain' else
                                                             'b4.out.weight') in norms, phase
        worst = max(abs(on_cuda[phase][name] - norm) / max(norm, 1e-6) for name, norm in norms.items())
        assert measured(f'{phase}: largest relative gradient-norm difference', worst, 1e-4) < 1e-4, phase
