"""Record GLeaD's discriminator phases through its own networks, so tests can hold our whole GLeaD path to them.

    python tests/reference/record_glead_training.py --reference=/path/to/glead --commit=SHA

record_regularizers.py holds GLeaD's loss terms to EzioBy/glead term by term, on given inputs. This runs its
training path instead: its networks_glead.py Generator and Discriminator (the decoder, the image/feature/w heads, and
the synthesis network that reconstructs from them) and its loss_glead.py StyleGAN2GLeaDLoss.accumulate_gradients, in
the Dmain and Dreg phases, for both fake terms (image: LPIPS weight 3, feature: cosine weight 10; real: LPIPS weight
10) and two resolution pairs (heads at G's feature resolution, and heads at twice it, which resizes them). Every
weight comes from `seeded_weight` under our parameter names (theirs are renamed, THEIR_NAMES), noise strengths are
zero, LPIPS gets record_regularizers.py's seeded weights. Writes glead_training_recorded.json beside this file: per
case and phase, the terms GLeaD reports and two numbers per D gradient (norm, dot with a fixed direction).
tests/test_regularizers_reference.py computes the same with our networks and loss. Needs torchvision beside torch.
Nothing from the reference is committed or read at test time: only these numbers.
"""

import os
import re
import sys
import zlib

import torch

sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # After the reference's.
from tests.reference import recording_main  # noqa: E402
from tests.reference import record_regularizers  # noqa: E402
from tests.reference.record_stylegan2_ada import gradient_summary  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'glead_training_recorded.json')
RESOLUTION = 64  # LPIPS' AlexNet needs more than 30 pixels, and GLeaD's LPIPS does not upsample.
BATCH = 2
# GLeaD's heads predict a 512-dim w (hard-coded in networks_glead.py), so G's w_dim is 512.
G_KWARGS = dict(z_dim=8, c_dim=0, w_dim=512, img_resolution=RESOLUTION, img_channels=3,
                mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=256, channel_max=16))
D_KWARGS = dict(c_dim=0, img_resolution=RESOLUTION, img_channels=3, channel_base=256, channel_max=16,
                epilogue_kwargs=dict(mbstd_group_size=2))
R1_GAMMA = 1.0
WEIGHTS = dict(real=10.0, image=3.0, feature=10.0)
# (fake term, D's decoder resolution, G's feature resolution): the paper's setting (both equal) and the
# public Church script's (heads at twice G's resolution, resized).
CASES = {f'{fake}-d{res_d}-g{res_g}': (fake, res_d, res_g) for fake in ('image', 'feature')
         for res_d, res_g in ((32, 32), (32, 16))}
PHASES = (('Dmain', 1), ('Dreg', 16))
# GLeaD's D names -> ours (the rest of G and D is named as in stylegan2-ada-pytorch on both sides).
THEIR_NAMES = ((r'^b(\d+)_dec\.', r'decoder.dec\1.'), (r'^img_proj\.', 'glead.to_img.'),
               (r'^feat_proj1\.', 'glead.to_feature.'), (r'^feat_proj2\.', 'glead.to_w.'))

#----------------------------------------------------------------------------
# Shared by the recording and our side.

def seeded_weight(name, shape):
    """The value of our parameter or buffer `name`: seeded by the name, so the order of filling does not matter."""
    generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    if name.endswith('noise_strength'):
        return torch.zeros(shape)  # No random noise: both codes draw it where they like.
    scale = 50 if '.fc' in name and 'mapping' in name else 0.5  # Mapping layers run at lr multiplier 0.01.
    return torch.randn(shape, generator=generator) * scale


def fill(module, rename=lambda name: name):
    """Every tensor of `module` but the FIR filters from seeded_weight(our name)."""
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not name.endswith('resample_filter'):
                tensor.copy_(seeded_weight(rename(name), tensor.shape))


def our_name(their_name):
    for pattern, replacement in THEIR_NAMES:
        their_name = re.sub(pattern, replacement, their_name)
    return their_name


def phase_inputs():
    generator = torch.Generator().manual_seed(6)
    base = torch.nn.functional.interpolate(torch.rand([BATCH, 3, 8, 8], generator=generator), size=RESOLUTION,
                                           mode='bilinear', align_corners=False)
    real = (base * 2 - 1 + 0.1 * torch.randn([BATCH, 3, RESOLUTION, RESOLUTION], generator=generator)).clamp(-1, 1)
    z = torch.randn([BATCH, G_KWARGS['z_dim']], generator=generator)
    return real, torch.zeros([BATCH, 0]), z, torch.zeros([BATCH, 0])


def run_phases(build, accumulate, reported, rename=lambda name: name):
    """{phase: {'terms': {name: value}, 'grads': D's gradient summary under our names}} for one case.

    build() -> (G, D) filled; accumulate(G, D, phase, gain) runs the codebase's loss; reported() -> the GLeaD terms
    the last accumulate reported, {'real': value, 'fake': value} (absent when not run)."""
    results = {}
    for phase, gain in PHASES:
        G, D = build()
        G.train().requires_grad_(False)
        D.train().requires_grad_(True)
        torch.manual_seed(5)
        accumulate(G, D, phase, gain)
        results[phase] = dict(terms=reported(), grads=gradient_summary(D, rename))
    return results

#----------------------------------------------------------------------------
# Recording.

def record(reference_dir):
    sys.path.insert(0, os.path.abspath(reference_dir))
    from torch_utils import training_stats  # pylint: disable=import-outside-toplevel
    from training import loss_glead, networks_glead  # pylint: disable=import-outside-toplevel
    from training.lpips import lpips as lpips_port, networks as lpips_networks  # pylint: disable=import-outside-toplevel
    lpips_model = record_regularizers._glead_lpips((lpips_networks, lpips_port))  # pylint: disable=protected-access
    seen = {}
    report = training_stats.report

    def capture(name, value):
        match = re.fullmatch(r'Loss/D/loss_(real|fake)_reg_\w+', name)
        if match:
            seen[match.group(1)] = float(torch.as_tensor(value).detach().float().mean())
        return report(name, value)
    loss_glead.training_stats.report = capture

    results = {}
    for case, (fake, res_d, res_g) in CASES.items():
        def build(res_d=res_d, res_g=res_g):
            G = networks_glead.Generator(**G_KWARGS)
            D = networks_glead.Discriminator(**D_KWARGS, decoder_res=[res_d], glead_res_g=res_g, decoder_out_channel=512)
            fill(G)
            fill(D, our_name)
            return G, D

        def accumulate(G, D, phase, gain, fake=fake, res_d=res_d, res_g=res_g):
            # Its constructor builds LPIPS on 'cuda' and prints; the same attributes are set here instead.
            loss = loss_glead.StyleGAN2GLeaDLoss.__new__(loss_glead.StyleGAN2GLeaDLoss)
            loss.__dict__.update(
                device=torch.device('cpu'), G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, augment_pipe=None,
                style_mixing_prob=0, r1_gamma=R1_GAMMA, pl_batch_shrink=2, pl_decay=0.01, pl_weight=0,
                pl_mean=torch.zeros([]), glead_res_d=[res_d], glead_res_d_max=res_d, glead_res_g=res_g,
                reg_target_real='gfwimage', reg_loss_real='lpips', reg_weight_real=WEIGHTS['real'],
                reg_target_fake='gfwimage' if fake == 'image' else 'gfeat',
                reg_loss_fake='lpips' if fake == 'image' else 'cos', reg_weight_fake=WEIGHTS[fake],
                lpips_loss=lpips_model)
            seen.clear()
            loss.accumulate_gradients(phase, *phase_inputs(), sync=True, gain=gain, cur_nimg=0)

        results[case] = run_phases(build, accumulate, lambda: dict(seen), our_name)
    return dict(source='EzioBy/glead training/networks_glead.py, training/loss_glead.py', torch=torch.__version__,
                weights=WEIGHTS, r1_gamma=R1_GAMMA, results=results)


if __name__ == '__main__':
    recording_main(__doc__.splitlines()[0], record, OUT, indent=1)
