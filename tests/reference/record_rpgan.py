"""Record what R3GAN's RpGAN + R1 + R2 computes on tiny networks, so tests can hold --loss=rpgan to it without it.

    python tests/reference/record_rpgan.py --reference=/path/to/R3GAN --commit=SHA [--out=FILE]

Loads the reference's R3GAN/Trainer.py (the AdversarialTraining class: the objective and both penalties; it
imports only torch) by its file path and runs its generator and discriminator steps on OUR tiny StyleGAN2 G and D
(built and filled as tests/reference/record_stylegan2_ada.py builds them), with a fixed differentiable stand-in
for augmentation (PREPROCESS: R3GAN takes R1 and R2 before it, through it). Records, per step, the mean of each
per-sample term and two numbers per gradient tensor (L2 norm, dot with a fixed direction), with and without the
stand-in. tests/test_loss_rpgan.py computes the same with training.rpgan.RpGANLoss and compares. Nothing from the
reference is committed or read at test time: only these numbers.
"""

import importlib.util
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tests.reference import recording_main  # noqa: E402
from tests.reference import record_stylegan2_ada as sg2  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'rpgan_recorded.json')
GAMMA = 1e5  # The tiny D's gradients are small (R1 ~ 2e-6): a large gamma gives the penalties a share of the loss.
SPEC = sg2.OUTPUT_SPECS['resnet']

#----------------------------------------------------------------------------
# Shared by the recording and the test.

def preprocess(images):
    """A fixed, differentiable stand-in for augmentation: a mirror, a gain and an offset."""
    return images.flip(3) * 0.9 + 0.05


CASES = {'plain': None, 'augmented': preprocess}


def networks():
    """Our tiny G and D (training.networks), filled deterministically, in training mode without gradients."""
    from training import networks as our_networks  # pylint: disable=import-outside-toplevel
    G, D = sg2.build(our_networks, SPEC)
    return G.train().requires_grad_(False), D.train().requires_grad_(False)


def step_results(run_step, network):
    """{case: {'terms': {name: mean}, 'gradients': summary of `network`'s gradients}} of one step per case.

    run_step(G, D, preprocess, real, c, z) -> {term name: per-sample tensor} runs one codebase's step of `network`
    ('G' or 'D') and backpropagates it."""
    results = {}
    for case, stand_in in CASES.items():
        G, D = networks()
        module = G if network == 'G' else D
        module.requires_grad_(True)
        real, c, z, _gen_c = sg2.phase_inputs()
        torch.manual_seed(5)  # G's noise inputs: both codes draw them in the same order.
        terms = run_step(G, D, stand_in, real, c, z)
        results[case] = dict(terms={name: float(value.mean()) for name, value in terms.items()},
                             gradients=sg2.gradient_summary(module))
    return results

#----------------------------------------------------------------------------
# Recording from the reference.

def record(reference_dir):
    path = os.path.join(reference_dir, 'R3GAN', 'Trainer.py')
    spec = importlib.util.spec_from_file_location('r3gan_trainer', path)
    trainer_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trainer_module)

    def trainer(G, D):
        generator = lambda z, c: G.synthesis(G.mapping(z, c))  # noqa: E731  # Style mixing off, as in R3GAN.
        return trainer_module.AdversarialTraining(generator, D)

    def generator_step(G, D, stand_in, real, c, z):
        loss, _relativistic = trainer(G, D).AccumulateGeneratorGradients(z, real, c, 1, stand_in or (lambda x: x))
        return {'Loss/G/loss': loss}

    def discriminator_step(G, D, stand_in, real, c, z):
        loss, _relativistic, r1, r2 = trainer(G, D).AccumulateDiscriminatorGradients(z, real, c, GAMMA, 1,
                                                                                    stand_in or (lambda x: x))
        return {'Loss/D/loss': loss, 'Loss/r1_penalty': r1, 'Loss/r2_penalty': r2}

    return dict(source='brownvc/R3GAN R3GAN/Trainer.py (AdversarialTraining)', torch=torch.__version__, gamma=GAMMA,
                G=step_results(generator_step, 'G'), D=step_results(discriminator_step, 'D'))


if __name__ == '__main__':
    recording_main(__doc__.splitlines()[0], record, OUT, indent=1)
