"""Record what the public GGDR and GLeaD codes and the `lpips` package compute, so tests can hold ours to them.

    python tests/reference/record_regularizers.py --reference=/path/to/GGDR --glead=/path/to/glead \
        --commit=GGDR_SHA --glead-commit=GLEAD_SHA

Needs torchvision and the `lpips` package (pip install torch torchvision lpips) beside torch; runs on the CPU.
Every weight is filled from seeded streams by the functions below (no download: AlexNet's convolutions and the
LPIPS v0.1 per-layer weights get the same made-up values on both sides), and so are the inputs:
- GGDR (naver-ai/GGDR, training/loss_ggdr.py): its regulariser on fixed decoder outputs and G features;
- GLeaD (EzioBy/glead, training/loss_glead.py): its single-resolution regulariser, cosine and LPIPS (its own
  LPIPS port), at the weights the paper uses (10 real, 3 fake image, 10 fake feature);
- the `lpips` package (richzhang/PerceptualSimilarity, v0.1, AlexNet): per-pair distances.
Writes regularizers_recorded.json beside this file; tests/test_regularizers_reference.py
computes the same with ours. Nothing from the references is committed or read at test time: only these numbers.
"""

import importlib.metadata
import os
import sys
import types

import torch

sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # After the references.
from tests.reference import recording_main  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'regularizers_recorded.json')
# AlexNet's convolutions (torchvision index, in, out, kernel): the tensors LPIPS uses.
ALEXNET_CONVS = ((0, 3, 64, 11), (3, 64, 192, 5), (6, 192, 384, 3), (8, 384, 256, 3), (10, 256, 256, 3))
FEATURE_SHAPE = (3, 16, 8, 8)  # Decoder outputs and G features [N, C, H, W].
IMAGE_SIZE = 64
WEIGHTS = dict(ggdr=10.0, glead_real=10.0, glead_fake_image=3.0, glead_fake_feature=10.0)

#----------------------------------------------------------------------------
# Shared by the recording and our side.

def seeded(shape, seed, scale=1.0, positive=False):
    value = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale
    return value.abs() if positive else value


def alexnet_state():
    """torchvision-named AlexNet `features.*` tensors, seeded (He-like scale, so activations stay finite)."""
    state = {}
    for index, in_ch, out_ch, kernel in ALEXNET_CONVS:
        state[f'features.{index}.weight'] = seeded([out_ch, in_ch, kernel, kernel], 100 + index,
                                                   (2 / (in_ch * kernel * kernel)) ** 0.5)
        state[f'features.{index}.bias'] = seeded([out_ch], 200 + index, 0.1)
    return state


def lin_state():
    """LPIPS v0.1 per-layer weights under the public keys, seeded and non-negative as trained ones are."""
    return {f'lin{i}.model.1.weight': seeded([1, out_ch, 1, 1], 300 + i, 0.1, positive=True)
            for i, (_, _, out_ch, _) in enumerate(ALEXNET_CONVS)}


def feature_pairs():
    """(decoder output, G feature) pairs: unrelated, nearly parallel, and opposite."""
    target = seeded(FEATURE_SHAPE, 1)
    return [(seeded(FEATURE_SHAPE, 2), target), (target + 0.1 * seeded(FEATURE_SHAPE, 3), target), (-target, target)]


def image_pairs():
    """Image pairs in [-1, 1], [2, 3, 64, 64]: unrelated, a small perturbation, and a shifted copy."""
    base = torch.tanh(seeded([2, 3, IMAGE_SIZE, IMAGE_SIZE], 11))
    return [(base, torch.tanh(seeded([2, 3, IMAGE_SIZE, IMAGE_SIZE], 12))),
            (base, (base + 0.05 * seeded([2, 3, IMAGE_SIZE, IMAGE_SIZE], 13)).clamp(-1, 1)),
            (base, torch.roll(base, shifts=3, dims=3))]


def _floats(tensor):
    return [float(v) for v in tensor.detach().flatten()]

#----------------------------------------------------------------------------
# Recording.

def _fill(module, state, rename):
    """Copy `state` into `module`'s parameters, each named rename(key) there."""
    params = dict(module.named_parameters())
    with torch.no_grad():
        for key, value in state.items():
            params[rename(key)].copy_(value)


def _lpips_package():
    import lpips  # pylint: disable=import-outside-toplevel
    model = lpips.LPIPS(net='alex', version='0.1', pretrained=False, pnet_rand=True, verbose=False).eval()
    slice_of = {index: name for name, child in model.net.named_children() for index in map(int, dict(child.named_children()))}
    _fill(model.net, alexnet_state(), lambda key: f'{slice_of[int(key.split(".")[1])]}.{key.split(".", 1)[1]}')
    _fill(model, lin_state(), lambda key: key)
    return model


def _glead_lpips(glead_modules):
    """GLeaD's LPIPS port with the seeded weights: its download and .to('cuda') replaced for the CPU."""
    import torchvision  # pylint: disable=import-outside-toplevel
    networks, port = glead_modules
    networks.models = types.SimpleNamespace(alexnet=lambda *args, **kwargs: torchvision.models.alexnet(weights=None))
    port.get_state_dict = lambda *args: {f'{i}.1.weight': value for i, value in enumerate(lin_state().values())}
    original_to = torch.nn.Module.to
    torch.nn.Module.to = lambda self, *args, **kwargs: self  # Their constructor moves to 'cuda'.
    try:
        model = port.LPIPS(net_type='alex').eval()
    finally:
        torch.nn.Module.to = original_to
    _fill(model.net.layers, alexnet_state(), lambda key: key.split('.', 1)[1])
    return model


def record(ggdr_dir, glead_dir):
    sys.path.insert(0, os.path.abspath(ggdr_dir))
    from training import loss_ggdr  # pylint: disable=import-outside-toplevel
    ggdr = loss_ggdr.StyleGAN2GGDRLoss.__new__(loss_ggdr.StyleGAN2GGDRLoss)
    ggdr_values = [float(ggdr.get_ggdr_reg([8], {8: pred}, {8: target})) for pred, target in feature_pairs()]
    for name in [m for m in sys.modules if m == 'training' or m.startswith(('training.', 'torch_utils', 'dnnlib'))]:
        del sys.modules[name]  # The GLeaD code has packages of the same names.
    sys.path[0] = os.path.abspath(glead_dir)
    from training import loss_glead  # pylint: disable=import-outside-toplevel
    from training.lpips import lpips as lpips_port, networks as lpips_networks  # pylint: disable=import-outside-toplevel
    glead = loss_glead.StyleGAN2GLeaDLoss.__new__(loss_glead.StyleGAN2GLeaDLoss)
    glead.lpips_loss = _glead_lpips((lpips_networks, lpips_port))
    with torch.no_grad():
        glead_values = dict(
            real=[float(glead.get_glead_reg_single_res('lpips', WEIGHTS['glead_real'], x, y)) for x, y in image_pairs()],
            fake_image=[float(glead.get_glead_reg_single_res('lpips', WEIGHTS['glead_fake_image'], x, y))
                        for x, y in image_pairs()],
            fake_feature=[float(glead.get_glead_reg_single_res('cos', WEIGHTS['glead_fake_feature'], pred, target))
                          for pred, target in feature_pairs()])
        package = [_floats(_lpips_package()(x, y)) for x, y in image_pairs()]
    return dict(sources=dict(ggdr='naver-ai/GGDR training/loss_ggdr.py', glead='EzioBy/glead training/loss_glead.py',
                             lpips=f'lpips {importlib.metadata.version("lpips")} (PyPI)'),
                torch=torch.__version__, weights=WEIGHTS, ggdr=ggdr_values, glead=glead_values, lpips=package)


def main():
    extra = sys.argv[1:]
    glead_dir = next(arg.split('=', 1)[1] for arg in extra if arg.startswith('--glead='))
    glead_commit = next(arg.split('=', 1)[1] for arg in extra if arg.startswith('--glead-commit='))
    sys.argv = [sys.argv[0]] + [arg for arg in extra if not arg.startswith(('--glead=', '--glead-commit='))]

    def record_both(ggdr_dir):
        recorded = record(ggdr_dir, glead_dir)
        recorded['glead_commit'] = glead_commit
        return recorded
    recording_main(__doc__.splitlines()[0], record_both, OUT, indent=1)


if __name__ == '__main__':
    main()
