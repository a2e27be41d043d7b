"""The relativistic pairing objective RpGAN with R1 and R2 (R3GAN: Huang et al., "The GAN is dead; long live the
GAN! A Modern GAN Baseline", NeurIPS 2024), on StyleGAN2's networks: train.py --loss=rpgan.

With real x and fake y = G(z) paired one to one in a batch:

    G minimises  softplus(-(D(y) - D(x)))
    D minimises  softplus(-(D(x) - D(y))) + gamma / 2 * (R1 + R2)

R1 = |dD(x)/dx|^2 and R2 = |dD(y)/dy|^2, each summed over the pixels of one sample, taken with respect to the
images before augmentation (D sees them augmented, the gradient passes through the pipe), as R3GAN's Trainer.py
computes them. Every step by default (d_reg_interval null, R3GAN's choice); with --reg-every=N the two penalties
run in their own phase every N steps with gain N and the optimizer rescaled as stylegan2-ada does.

ADA's controller reads Loss/signs/real. D's raw output means nothing here: the loss is unchanged when a constant
is added to every logit. So this loss reports the sign of the relativistic logit D(x) - D(y) there (what R3GAN's
code reports under that name): +1 when D ranks the real above its paired fake.
"""

import torch

import dnnlib
from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix
from training.loss import StyleGAN2Loss


class RpGANLoss(StyleGAN2Loss):
    """RpGAN + R1 + R2; `r1_gamma` is R3GAN's gamma (both penalties), path length and style mixing as configured."""

    def __init__(self, device, G, D, extra_terms=(), **kwargs):
        if extra_terms:
            raise ValueError('extra loss terms (GGDR, GLeaD) are defined for the non-saturating loss; use --loss=ns '
                             'with --reg-type')
        super().__init__(device, G, D, **kwargs)

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg, before_last_backward=None):
        do_Gmain, do_Gpl, do_Dmain, do_Dreg = self._passes_of(phase)
        step = dnnlib.EasyDict(phase=phase, gain=gain, cur_nimg=int(cur_nimg), before_last_backward=before_last_backward,
                               backwards_left=int(do_Gmain) + int(do_Gpl) + int(do_Dmain or do_Dreg))
        if do_Gmain:
            self._generator_relativistic(step, real_img, real_c, gen_z, gen_c)
        if do_Gpl:
            self._generator_path_length(step, gen_z, gen_c)
        if do_Dmain or do_Dreg:
            self._discriminator_relativistic(step, real_img, real_c, gen_z, gen_c, do_Dmain, do_Dreg)

    def _generator_relativistic(self, step, real_img, real_c, gen_z, gen_c):
        """G: softplus(-(D(G(z)) - D(x))), real and fake paired by position in the batch."""
        gen_img, _gen_ws = self.run_G(gen_z, gen_c)
        gen_logits, _heads = self.run_D(gen_img, gen_c)
        real_logits, _heads = self.run_D(real_img.detach(), real_c)
        training_stats.report('Loss/scores/fake', gen_logits)
        training_stats.report('Loss/signs/fake', gen_logits.sign())
        loss = torch.nn.functional.softplus(-(gen_logits - real_logits)).flatten()
        training_stats.report('Loss/G/loss', loss)
        self._backward(step, 'Gmain', {'Loss/G/loss': loss})

    def _discriminator_relativistic(self, step, real_img, real_c, gen_z, gen_c, do_Dmain, do_Dreg):
        """D: softplus(-(D(x) - D(y))) and/or gamma / 2 * (R1 + R2), from one pass over the pair."""
        with torch.no_grad():
            gen_img, _gen_ws = self.run_G(gen_z, gen_c, update_emas=True)
        real_img = real_img.detach().requires_grad_(do_Dreg)
        gen_img = gen_img.detach().requires_grad_(do_Dreg)
        real_logits, _heads = self.run_D(real_img, real_c)
        gen_logits, _heads = self.run_D(gen_img, gen_c)
        relativistic = real_logits - gen_logits
        training_stats.report('Loss/scores/real', real_logits)
        training_stats.report('Loss/scores/fake', gen_logits)
        training_stats.report('Loss/signs/real', relativistic.sign())  # What ADA reads (module docstring).
        terms = {}
        if do_Dmain:
            loss = torch.nn.functional.softplus(-relativistic).flatten()
            training_stats.report('Loss/D/loss', loss)
            terms['Loss/D/loss'] = loss
        if do_Dreg:
            with conv2d_gradfix.no_weight_gradients():
                r1_grads, r2_grads = torch.autograd.grad(outputs=[real_logits.sum(), gen_logits.sum()],
                                                         inputs=[real_img, gen_img], create_graph=True)
            r1_penalty = r1_grads.square().sum(dim=[1, 2, 3])
            r2_penalty = r2_grads.square().sum(dim=[1, 2, 3])
            training_stats.report('Loss/r1_penalty', r1_penalty)
            training_stats.report('Loss/r2_penalty', r2_penalty)
            loss_reg = (r1_penalty + r2_penalty) * (self.r1_gamma / 2)
            training_stats.report('Loss/D/reg', loss_reg)
            # The zero-weighted logits keep every D parameter in the graph of a reg-only phase (DDP-friendly).
            terms['Loss/D/reg'] = relativistic.flatten() * 0 + loss_reg
        self._backward(step, 'Dboth' if do_Dmain and do_Dreg else 'Dmain' if do_Dmain else 'Dreg', terms)
