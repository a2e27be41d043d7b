"""Record what stylegan2-ada-pytorch computes on tiny networks, so tests can hold our code to it without it.

    python tests/reference/record_stylegan2_ada.py --reference=/path/to/stylegan2-ada-pytorch --commit=SHA [--out=FILE]

Runs the reference's own training/networks.py and training/loss.py (CPU, its plain-PyTorch op paths) on the
constructions in SPECS, with every tensor filled by `fill_deterministically`, and writes
stylegan2_ada_recorded.json beside this file: network outputs (orig, skip, resnet; fp32 and fp16 layers; every value
of conditional 8x8 networks) and,
for each of the four loss phases, two numbers per gradient tensor (its L2 norm and its dot product with a fixed
random direction). tests/test_reference_parity.py computes the same with our classes, from the same functions
below, and compares. Nothing from the reference is committed or read at test time: only these numbers.
"""

import os
import sys

import numpy as np
import torch

sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # After the reference's.
from tests.reference import recording_main  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'stylegan2_ada_recorded.json')

# Tiny constructions, as keyword arguments of Generator / Discriminator (shared by both codebases).
G_COMMON = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2))
D_COMMON = dict(c_dim=0, img_resolution=16, img_channels=3, channel_base=128, channel_max=8,
                epilogue_kwargs=dict(mbstd_group_size=2))
OUTPUT_SPECS = {
    'orig':      dict(synthesis=dict(channel_base=128, channel_max=8, architecture='orig'), d_arch='orig'),
    'skip':      dict(synthesis=dict(channel_base=128, channel_max=8, architecture='skip'), d_arch='skip'),
    'resnet':    dict(synthesis=dict(channel_base=128, channel_max=8, architecture='resnet'), d_arch='resnet'),
    'skip_fp16': dict(synthesis=dict(channel_base=128, channel_max=8, architecture='skip', num_fp16_res=2,
                                     conv_clamp=256), d_arch='resnet', d_fp16=dict(num_fp16_res=2, conv_clamp=256)),
}
LOSS_KWARGS = dict(r1_gamma=1.0, style_mixing_prob=0.9, pl_weight=2.0, pl_batch_shrink=2, pl_decay=0.01)
PHASES = ('Gmain', 'Greg', 'Dmain', 'Dreg')

#----------------------------------------------------------------------------
# Shared by the recording and the test.

def fill_deterministically(module, seed):
    """Every tensor but the FIR filters from one seeded stream, in sorted-name order (mapping fc's scaled for lr 0.01)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in sorted(module.state_dict().items()):
            if not name.endswith('resample_filter'):
                scale = 50 if '.fc' in name and 'mapping' in name else 0.5
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * scale)


def build(networks_module, spec):
    """(G, D) of `spec` from a networks module (the reference's training.networks or ours), filled deterministically."""
    G = networks_module.Generator(**G_COMMON, synthesis_kwargs=dict(spec['synthesis']))
    D = networks_module.Discriminator(**D_COMMON, architecture=spec['d_arch'], **spec.get('d_fp16', {}))
    fill_deterministically(G, 1)
    fill_deterministically(D, 2)
    return G, D


def network_outputs(G, D):
    """Images (every 17th value) and logits for fixed latents, in eval mode with constant noise."""
    z = torch.randn([2, G_COMMON['z_dim']], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        img = G.eval()(z, None, truncation_psi=0.5, truncation_cutoff=2, noise_mode='const')
        logits = D.eval()(img, None)
    return dict(img=[round(float(v), 7) for v in img.flatten()[::17]], logits=[round(float(v), 7) for v in logits.flatten()])


def conditional_outputs(networks_module, arch):
    """Every image value and the logits of a conditional 8x8 G and D (projection conditioning, truncation with a
    cutoff) of architecture `arch`, weights filled deterministically."""
    G = networks_module.Generator(8, 2, 8, 8, 3, mapping_kwargs=dict(num_layers=2),
                                  synthesis_kwargs=dict(channel_base=64, channel_max=8, architecture=arch))
    D = networks_module.Discriminator(2, 8, 3, architecture=arch, channel_base=64, channel_max=8,
                                      epilogue_kwargs=dict(mbstd_group_size=2))
    fill_deterministically(G, 1)
    fill_deterministically(D, 2)
    z = torch.randn([2, 8], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        img = G.eval()(z, torch.eye(2), truncation_psi=0.5, truncation_cutoff=2, noise_mode='const')
        logits = D.eval()(img, torch.eye(2))
    return dict(img=[float(v) for v in img.flatten()], logits=[float(v) for v in logits.flatten()])


def phase_inputs():
    generator = torch.Generator().manual_seed(4)
    real = torch.rand([4, 3, 16, 16], generator=generator) * 2 - 1
    z = torch.randn([4, G_COMMON['z_dim']], generator=generator)
    return real, torch.zeros([4, 0]), z, torch.zeros([4, 0])


def gradient_summary(module, rename=lambda name: name):
    """{name: [L2 norm, dot with a fixed direction]} of every parameter gradient of `module`, under rename(name)."""
    summary = {}
    for name, param in sorted((rename(name), param) for name, param in module.named_parameters()):
        if param.grad is None:
            continue
        grad = param.grad.detach().double().flatten()
        direction = torch.randn(grad.shape, generator=torch.Generator().manual_seed(len(name)), dtype=torch.float64)
        summary[name] = [float(grad.norm()), float(grad @ direction)]
    return summary


def phase_gradients(make_loss, networks_module, spec):
    """{phase: gradient summary} for each phase, each from fresh networks and loss and the same random seed.

    make_loss(G, D) -> accumulate(phase, real_img, real_c, gen_z, gen_c, gain): the codebase's loss call.
    """
    return gradients_of_phases(make_loss, lambda: build(networks_module, spec), phase_inputs)


def gradients_of_phases(make_loss, build_networks, inputs, rename=lambda name: name):
    """phase_gradients for any networks: build_networks() -> fresh (G, D), inputs() -> the phase's tensors,
    gradients summarised under rename(name)."""
    results = {}
    for phase in PHASES:
        G, D = build_networks()
        G.train().requires_grad_(False)
        D.train().requires_grad_(False)
        module = G if phase.startswith('G') else D
        module.requires_grad_(True)
        accumulate = make_loss(G, D)
        torch.manual_seed(5)
        accumulate(phase, *inputs(), gain=4 if phase.endswith('reg') else 1)
        results[phase] = gradient_summary(module, rename=rename)
    return results

#----------------------------------------------------------------------------
# Recording from the reference.

def _reference_loss(loss_module):
    def make_loss(G, D):
        loss = loss_module.StyleGAN2Loss(torch.device('cpu'), G.mapping, G.synthesis, D, **LOSS_KWARGS)
        return lambda phase, real_img, real_c, gen_z, gen_c, gain: loss.accumulate_gradients(
            phase, real_img, real_c, gen_z, gen_c, sync=True, gain=gain)
    return make_loss


def record(reference_dir):
    sys.path.insert(0, os.path.abspath(reference_dir))
    from training import loss as reference_loss  # pylint: disable=import-outside-toplevel
    from training import networks as reference_networks  # pylint: disable=import-outside-toplevel
    outputs = {name: network_outputs(*build(reference_networks, spec)) for name, spec in OUTPUT_SPECS.items()}
    gradients = phase_gradients(_reference_loss(reference_loss), reference_networks, OUTPUT_SPECS['resnet'])
    conditional = {arch: conditional_outputs(reference_networks, arch) for arch in ('skip', 'resnet')}
    return dict(source='NVlabs/stylegan2-ada-pytorch', torch=torch.__version__, numpy=np.__version__,
                outputs=outputs, loss_kwargs=LOSS_KWARGS, gradients=gradients, conditional=conditional)


if __name__ == '__main__':
    recording_main(__doc__.splitlines()[0], record, OUT, indent=1)
