"""Record what the transitional-cGAN code (Shahbazi et al., ICLR 2022) computes on tiny conditional networks.

    python tests/reference/record_transitional.py --reference=/path/to/transitional-cGAN --commit=SHA [--out=FILE]

Runs the reference's own training/networks.py (its mapping network, which adds the embedded label after the first
layer scaled by `transition`, and its discriminator with an unconditional and a conditional logit) and
training/loss.py (the conditional logit's losses weighted by D's `transition`), CPU, plain-PyTorch op paths. Weights
are filled from one seeded stream in the order of our parameter names (theirs renamed: `proj_embedd` is our
`embed_proj`, `out_uc` our `out_uncond`, `out_c` our `out`). Records, at several transition values, G's images and
D's two logits, and for each loss phase the gradient summaries of record_stylegan2_ada.py. Its schedule (the
transition's increments in the training loop) is not recorded: ours is a closed form of the image count (README).
tests/test_transitional.py computes the same with our classes and compares. Nothing of the reference is committed.
"""

import os
import sys

import numpy as np
import torch

sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # After the reference's.
from tests.reference import recording_main  # noqa: E402
from tests.reference import record_stylegan2_ada as base  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'transitional_recorded.json')

G_KWARGS = dict(z_dim=8, c_dim=2, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                synthesis_kwargs=dict(channel_base=128, channel_max=8, architecture='skip'))
D_KWARGS = dict(c_dim=2, img_resolution=16, img_channels=3, architecture='resnet', channel_base=128, channel_max=8,
                epilogue_kwargs=dict(mbstd_group_size=2))
OUR_OPTIONS = (dict(mapping_kwargs=dict(num_layers=2, cond_transition=True)), dict(cond_transition=True))
RENAMES = (('mapping.proj_embedd.', 'mapping.embed_proj.'), ('b4.out_uc.', 'b4.out_uncond.'), ('b4.out_c.', 'b4.out.'))
OUTPUT_TRANSITIONS = (0.0, 0.25, 1.0)
LOSS_TRANSITIONS = (0.25, 1.0)

#----------------------------------------------------------------------------
# Shared by the recording and the test.

def our_name(name):
    for theirs, ours in RENAMES:
        name = name.replace(theirs, ours)
    return name


def fill(module, seed):
    """Every tensor but the FIR filters and the transition buffers from one seeded stream, in the sorted order of
    our names; the mapping networks' layers (lr multiplier 0.01) scaled 100x more."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in sorted(module.state_dict().items(), key=lambda item: our_name(item[0])):
            if name.endswith(('resample_filter', 'transition')):
                continue
            ours = our_name(name)
            scale = 50 if 'mapping' in ours and ('.fc' in ours or 'embed_proj' in ours) else 0.5
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * scale)


def set_transition(G, D, value):
    with torch.no_grad():
        G.mapping.transition.fill_(value)
        D.transition.fill_(value)


def build(networks_module, options=({}, {})):
    """(G, D) from a networks module (theirs, or ours with OUR_OPTIONS), filled deterministically."""
    g_options, d_options = options
    g_kwargs = dict(G_KWARGS, mapping_kwargs=dict(G_KWARGS['mapping_kwargs'], **g_options.get('mapping_kwargs', {})))
    G = networks_module.Generator(**g_kwargs)
    D = networks_module.Discriminator(**D_KWARGS, **d_options)
    fill(G, 1)
    fill(D, 2)
    return G, D


def split_logits(out):
    """(unconditional, conditional) logits, [N] each, from their [N, 2] or our (logits, heads)."""
    if isinstance(out, tuple):
        return out[0].flatten(), out[1]['cond_logits'].flatten()
    return out[:, 0], out[:, 1]


def outputs(G, D):
    """{transition: images (every 11th value), unconditional and conditional logits} for fixed latents and labels."""
    z = torch.randn([4, G_KWARGS['z_dim']], generator=torch.Generator().manual_seed(3))
    c = torch.eye(2)[[0, 1, 1, 0]]
    results = {}
    for value in OUTPUT_TRANSITIONS:
        set_transition(G, D, value)
        with torch.no_grad():
            img = G.eval()(z, c, noise_mode='const')
            uncond, cond = split_logits(D.eval()(img, c))
        results[f'{value:g}'] = dict(img=[round(float(v), 7) for v in img.flatten()[::11]],
                                     uncond=[round(float(v), 7) for v in uncond],
                                     cond=[round(float(v), 7) for v in cond])
    return results


def phase_inputs():
    generator = torch.Generator().manual_seed(4)
    real = torch.rand([4, 3, 16, 16], generator=generator) * 2 - 1
    z = torch.randn([4, G_KWARGS['z_dim']], generator=generator)
    return real, torch.eye(2)[[0, 1, 0, 1]], z, torch.eye(2)[[1, 1, 0, 0]]


def phase_gradients(make_loss, networks_module, options, transition):
    """{phase: gradient summary under our names}, each phase from fresh networks and loss and the same seed."""
    def build_at_transition():
        G, D = build(networks_module, options)
        set_transition(G, D, transition)
        return G, D
    return base.gradients_of_phases(make_loss, build_at_transition, phase_inputs, rename=our_name)

#----------------------------------------------------------------------------
# Recording from the reference.

def record(reference_dir):
    sys.path.insert(0, os.path.abspath(reference_dir))
    from training import loss as reference_loss  # pylint: disable=import-outside-toplevel
    from training import networks as reference_networks  # pylint: disable=import-outside-toplevel

    def make_loss(G, D):
        loss = reference_loss.StyleGAN2Loss(torch.device('cpu'), G.mapping, G.synthesis, D, **base.LOSS_KWARGS)
        return lambda phase, real_img, real_c, gen_z, gen_c, gain: loss.accumulate_gradients(
            phase, real_img, real_c, gen_z, gen_c, sync=True, gain=gain, num_gpus=1)

    return dict(source='mshahbazi72/transitional-cGAN', torch=torch.__version__, numpy=np.__version__,
                outputs=outputs(*build(reference_networks)), loss_kwargs=base.LOSS_KWARGS,
                gradients={f'{value:g}': phase_gradients(make_loss, reference_networks, ({}, {}), value)
                           for value in LOSS_TRANSITIONS})


if __name__ == '__main__':
    recording_main(__doc__.splitlines()[0], record, OUT, indent=1)
