"""The StyleGAN2 training objective: non-saturating logistic loss, lazy R1 and path-length regularisation.

One call of `StyleGAN2Loss.accumulate_gradients(phase, ...)` runs the passes of one training phase and
calls `.backward()` on their losses; the training loop owns the optimizers and steps them. Phases:

    Gmain  generator, logistic loss on fakes          Dmain  discriminator, logistic loss on fakes and reals
    Greg   generator, path-length penalty             Dreg   discriminator, R1 penalty on reals
    Gboth  Gmain + Greg in one step                   Dboth  Dmain + Dreg in one step

With lazy regularisation (StyleGAN2 paper, Sec. 3.1 and Appendix B) the `*reg` phases run every N steps
with gain N, and the optimizer's lr and betas are adjusted by `lazy_regularization_opt_kwargs`.
Second-order gradients (R1, path length) go through `conv2d_gradfix.no_weight_gradients`, so the inner
gradient skips weight gradients it does not need while staying differentiable.

Extra objectives (GGDR- or GLeaD-style feature or reconstruction terms) plug in as `LossTerm`s, and a
discriminator may return extra heads after its logits: `D(img, c) -> logits` or `(logits, *heads)`.
"""

import inspect

import numpy as np
import torch

import dnnlib
from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix

#----------------------------------------------------------------------------

PHASES = ('Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth')
PASSES = ('Gmain', 'Dgen', 'Dreal', 'Dr1')  # Passes an extra LossTerm can join (Dr1: the lazy R1 pass on reals).


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or infinite; the message names the term, the phase and the training step."""


class LossTerm:
    """An extra objective added to one main-loss pass; subclass it and pass instances as `extra_terms`.

    `passes` lists where it applies: 'Gmain' (generator on fakes), 'Dgen' (discriminator on fakes),
    'Dreal' (discriminator on reals), 'Dr1' (the R1 pass on reals, scaled by its lazy gain like R1).
    `__call__(ctx)` returns a per-sample loss [N] (or a scalar), already weighted; it is reported as
    `Loss/<name>` and added to that pass's loss before backward. `ctx` holds: phase, cur_nimg, G, D,
    img (as generated or loaded, before augmentation), c, logits, heads (the extra outputs of D, a
    tuple), and, for generator passes, ws. A term with `feature_res` also gets, in the Dgen pass,
    `features`: G's synthesis features at that resolution, augmented geometrically like the image.
    """
    name = 'extra'      # Statistic name under Loss/.
    passes = ()         # Subset of PASSES.
    feature_res = None  # Resolution of G's features the term needs in ctx.features (Dgen pass), or None.

    def __call__(self, ctx):
        raise NotImplementedError(f'{type(self).__name__} must implement __call__(ctx)')

    def reported(self, ctx):
        """Whether this call's loss joins the Loss/<name> statistic (a term that only keeps a path in the graph
        with zero weight says no, so the statistic stays the mean of what it adds)."""
        del ctx
        return True

class NonFiniteWatch:
    """Notes, on the device, the first of a series of loss checks that saw NaN or inf, so that a training step
    never waits for a read to the host; raise_if_any() reads the verdict once (at a tick) and names that check."""

    _NONE = torch.iinfo(torch.int64).max  # No check has failed.

    def __init__(self, device):
        self._descriptions = []  # Per check since the last raise_if_any(): its message, with {} for NaN/infinite.
        self._first = torch.full([], self._NONE, dtype=torch.int64, device=device)  # 2 * index + is NaN.

    def check(self, loss, description):
        """Note whether `loss` has a NaN or inf; `description` names it, with {} where 'NaN' or 'infinite' goes."""
        code = 2 * len(self._descriptions)
        self._descriptions.append(description)
        loss = loss.detach()
        value = torch.isnan(loss).any().to(torch.int64) + code
        self._first = torch.where(torch.isfinite(loss).all(), self._first, torch.minimum(self._first, value))

    def raise_if_any(self, num_processes=1):
        first = self._first.clone()
        if num_processes > 1:  # Every rank runs the same checks in the same order: the lowest code came first.
            torch.distributed.all_reduce(first, op=torch.distributed.ReduceOp.MIN)
        first = int(first)
        descriptions, self._descriptions = self._descriptions, []
        self._first.fill_(self._NONE)
        if first != self._NONE:
            description = descriptions[first // 2].format('NaN' if first % 2 else 'infinite')
            raise NonFiniteLossError(f'{description}; lower the learning rate, train in fp32 (--fp32=1), or resume '
                                     f'from an earlier snapshot')

#----------------------------------------------------------------------------

def lazy_regularization_opt_kwargs(opt_kwargs, reg_interval):
    """Optimizer kwargs adjusted for a regulariser that runs every `reg_interval` minibatches.

    The main and reg phases together take reg_interval + 1 optimizer steps per interval, so the
    learning rate and the Adam betas are rescaled by mb_ratio = interval / (interval + 1) (lr * ratio,
    beta ** ratio) to keep the per-minibatch dynamics of a single combined step. None = no lazy reg.
    """
    opt_kwargs = dnnlib.EasyDict(opt_kwargs)
    if reg_interval is None:
        return opt_kwargs
    if reg_interval < 1:
        raise ValueError(f'reg_interval must be a positive integer or None, got {reg_interval!r}')
    mb_ratio = reg_interval / (reg_interval + 1)
    if 'lr' in opt_kwargs:
        opt_kwargs.lr = opt_kwargs.lr * mb_ratio
    if 'betas' in opt_kwargs:
        opt_kwargs.betas = [beta ** mb_ratio for beta in opt_kwargs.betas]
    return opt_kwargs


def training_phases(network, reg_interval):
    """The phases one network trains with: [(name, interval)]; `interval` is also the phase's gain.

    reg_interval=None gives one combined phase ('Gboth'/'Dboth') every step; otherwise the main phase
    every step and the reg phase every reg_interval steps, with its gain (weight) multiplied by it.
    """
    if network not in ('G', 'D'):
        raise ValueError(f'network must be "G" or "D", got {network!r}')
    if reg_interval is None:
        return [(network + 'both', 1)]
    return [(network + 'main', 1), (network + 'reg', int(reg_interval))]

#----------------------------------------------------------------------------

class StyleGAN2Loss:
    """Non-saturating logistic GAN loss with R1, path-length regularisation and style mixing."""

    def __init__(self,
        device,                     # Device the pl_mean buffer and random draws live on.
        G,                          # Generator: .z_dim, .c_dim, .num_ws, .mapping(z, c, ...), .synthesis(ws, ...).
        D,                          # Discriminator: D(img, c) -> logits [N, 1] or (logits, *heads).
        augment_pipe        = None, # Applied to every image D sees (ADA), or None.
        r1_gamma            = 10,   # R1 weight; the penalty is r1_gamma / 2 * |grad D(x)|^2.
        style_mixing_prob   = 0.9,  # Probability of mixing the ws of two latents at a random layer.
        pl_weight           = 2,    # Path-length penalty weight; 0 disables it.
        pl_batch_shrink     = 2,    # The path-length pass uses batch // pl_batch_shrink samples.
        pl_decay            = 0.01, # Decay of the running mean of path lengths.
        extra_terms         = (),   # LossTerms added to the passes: instances, or kwargs dicts with class_name.
        check_finite        = True, # Note NaN/inf losses on the device; raise_if_nonfinite() raises NonFiniteLossError.
    ):
        self.device = torch.device(device)
        self.G = G
        self.D = D
        self.augment_pipe = augment_pipe
        self.r1_gamma = float(r1_gamma)
        self.style_mixing_prob = float(style_mixing_prob)
        self.pl_weight = float(pl_weight)
        self.pl_batch_shrink = int(pl_batch_shrink)
        self.pl_decay = float(pl_decay)
        self.extra_terms = [dnnlib.util.construct_class_by_name(**term, device=self.device) if isinstance(term, dict)
                            else term for term in extra_terms]
        feature_resolutions = {term.feature_res for term in self.extra_terms if term.feature_res is not None}
        if len(feature_resolutions) > 1:
            raise ValueError(f'extra terms ask for G features at several resolutions {sorted(feature_resolutions)}; '
                             f'one is supported')
        self.feature_res = feature_resolutions.pop() if feature_resolutions else None
        self.check_finite = bool(check_finite)
        self.nonfinite = NonFiniteWatch(self.device) if self.check_finite else None
        self.pl_mean = torch.zeros([], device=self.device)
        self._mapping_style = _keyword_style(G.mapping, ('update_emas', 'skip_w_avg_update'))
        self._synthesis_takes_update_emas = _keyword_style(G.synthesis, ('update_emas',)) is not None
        if self.pl_batch_shrink < 1:
            raise ValueError(f'pl_batch_shrink must be >= 1, got {pl_batch_shrink!r}')
        for term in self.extra_terms:
            unknown = set(term.passes) - set(PASSES)
            if unknown:
                raise ValueError(f'{type(term).__name__}.passes has {sorted(unknown)}; accepted: {", ".join(PASSES)}')

    # Resumable state -------------------------------------------------------

    def state_dict(self):
        """The loss's own training state (the running path-length mean), for snapshots and exact resume."""
        return {'pl_mean': self.pl_mean.detach().cpu().clone()}

    def load_state_dict(self, state):
        if 'pl_mean' not in state:
            raise KeyError(f'loss state has no "pl_mean" (keys: {sorted(state)})')
        self.pl_mean = torch.as_tensor(state['pl_mean'], dtype=torch.float32).reshape([]).to(self.device).clone()

    def raise_if_nonfinite(self, num_processes=1):
        """Raise NonFiniteLossError naming the first NaN/inf loss since the last call, on any rank (a collective
        call with num_processes > 1). The training loop calls it at every tick, before anything is written."""
        if self.nonfinite is not None:
            self.nonfinite.raise_if_any(num_processes)

    # Networks -------------------------------------------------------------

    def _map(self, z, c, update_emas, is_mixing_latent=False):
        """G.mapping in the convention of the network at hand.

        Networks with `update_emas` (stylegan3 style) update their w average only when asked (the D pass
        on fakes); networks with `skip_w_avg_update` (stylegan2-ada style) update it on every main
        mapping call in training mode, as stylegan2-ada trained them; mixing latents never update it.
        """
        if self._mapping_style == 'update_emas':
            return self.G.mapping(z, c, update_emas=update_emas and not is_mixing_latent)
        if self._mapping_style == 'skip_w_avg_update':
            return self.G.mapping(z, c, skip_w_avg_update=is_mixing_latent)
        return self.G.mapping(z, c)

    def run_G(self, z, c, update_emas=False, feature_res=None):
        """Images and ws for latents z, mixing in the ws of fresh latents from a random layer on; with
        feature_res, also G's synthesis features there: (img, ws, features)."""
        ws = self._map(z, c, update_emas)
        num_ws = ws.shape[1]
        if self.style_mixing_prob > 0 and num_ws > 1:
            cutoff = torch.randint(1, num_ws, [], device=ws.device)
            mix = torch.rand([], device=ws.device) < self.style_mixing_prob
            cutoff = torch.where(mix, cutoff, torch.full_like(cutoff, num_ws))
            other_ws = self._map(torch.randn_like(z), c, update_emas=False, is_mixing_latent=True)
            layer = torch.arange(num_ws, device=ws.device).reshape([1, -1, 1])
            ws = torch.where(layer < cutoff, ws, other_ws)  # Layers >= cutoff take the other latent's ws.
        synthesis_kwargs = dict(update_emas=update_emas) if self._synthesis_takes_update_emas else {}
        if feature_res is not None:
            img, features = self.G.synthesis(ws, feature_res=feature_res, **synthesis_kwargs)
            return img, ws, features
        return self.G.synthesis(ws, **synthesis_kwargs), ws

    def run_D(self, img, c, features=None):
        """Logits [N, 1] and any extra heads of D (a tuple), after augmentation; with `features` (G's, for
        GGDR), also those features moved by the same geometric augmentation: (logits, heads, features)."""
        if self.augment_pipe is not None:
            if features is None:
                img = self.augment_pipe(img)
            else:
                img, features = self.augment_pipe(img, features=features)
        out = self.D(img, c)
        logits, heads = (out[0], tuple(out[1:])) if isinstance(out, (tuple, list)) else (out, ())
        return (logits, heads) if features is None else (logits, heads, features)

    # Phases ---------------------------------------------------------------

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg, before_last_backward=None):
        """Run the passes of `phase` and backpropagate their losses, scaled by `gain`.

        before_last_backward: called right before the phase's last backward pass (the training loop arms
        its gradient reducer there, training/run/gradients.py).
        """
        do_Gmain, do_Gpl, do_Dmain, do_Dr1 = self._passes_of(phase)
        step = dnnlib.EasyDict(phase=phase, gain=gain, cur_nimg=int(cur_nimg), before_last_backward=before_last_backward,
                               backwards_left=int(do_Gmain) + int(do_Gpl) + int(do_Dmain) + int(do_Dmain or do_Dr1))

        if do_Gmain:
            self._generator_main(step, gen_z, gen_c)
        if do_Gpl:
            self._generator_path_length(step, gen_z, gen_c)
        loss_Dgen = None
        if do_Dmain:
            loss_Dgen = self._discriminator_fake(step, gen_z, gen_c)
        if do_Dmain or do_Dr1:
            self._discriminator_real(step, real_img, real_c, do_Dmain, do_Dr1, loss_Dgen)

    def _passes_of(self, phase):
        """(G main, G path length, D main, D penalty): which passes `phase` runs, weights of zero skipping theirs."""
        if phase not in PHASES:
            raise ValueError(f'unknown loss phase {phase!r}; accepted: {", ".join(PHASES)}')
        return (phase in ('Gmain', 'Gboth'), phase in ('Greg', 'Gboth') and self.pl_weight != 0,
                phase in ('Dmain', 'Dboth'), phase in ('Dreg', 'Dboth') and self.r1_gamma != 0)

    def _generator_main(self, step, gen_z, gen_c):
        """Non-saturating loss: G maximises log sigmoid(D(G(z)))."""
        gen_img, gen_ws = self.run_G(gen_z, gen_c)
        gen_logits, heads = self.run_D(gen_img, gen_c)
        training_stats.report('Loss/scores/fake', gen_logits)
        training_stats.report('Loss/signs/fake', gen_logits.sign())
        loss = torch.nn.functional.softplus(-gen_logits).flatten()
        training_stats.report('Loss/G/loss', loss)
        terms = {'Loss/G/loss': loss}
        ctx = dnnlib.EasyDict(img=gen_img, c=gen_c, ws=gen_ws, logits=gen_logits, heads=heads)
        terms.update(self._extra_terms('Gmain', step, ctx))
        self._backward(step, 'Gmain', terms)

    def _generator_path_length(self, step, gen_z, gen_c):
        """Path-length penalty (StyleGAN2 Eq. 4): (|J_w^T y| - a)^2 with a running mean a of the lengths."""
        batch_size = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
        gen_img, gen_ws = self.run_G(gen_z[:batch_size], gen_c[:batch_size])
        pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
        with conv2d_gradfix.no_weight_gradients():
            pl_grads, = torch.autograd.grad(outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws], create_graph=True)
        pl_lengths = pl_grads.square().sum(dim=2).mean(dim=1).sqrt()
        # The penalty's target keeps the gradient of its pl_decay share of this batch's mean length, as in
        # stylegan2-ada-pytorch (detaching it changes G's gradient by about pl_decay); only the stored
        # running mean is detached.
        pl_mean = self.pl_mean.lerp(pl_lengths.mean().to(self.pl_mean.dtype), self.pl_decay)
        self.pl_mean.copy_(pl_mean.detach())
        pl_penalty = (pl_lengths - pl_mean).square()
        training_stats.report('Loss/pl_penalty', pl_penalty)
        loss_Gpl = pl_penalty * self.pl_weight
        training_stats.report('Loss/G/reg', loss_Gpl)
        # The zero-weighted image term keeps every synthesis parameter in the graph (DDP-friendly).
        self._backward(step, 'Greg', {'Loss/G/reg': gen_img[:, 0, 0, 0] * 0 + loss_Gpl})

    def _discriminator_fake(self, step, gen_z, gen_c):
        """D minimises softplus(D(G(z))) on fakes; returns the per-sample loss for reporting.

        G runs with update_emas=True: the one pass where update_emas-style networks track their w average.
        """
        features = None
        with torch.no_grad():
            if self.feature_res is None:
                gen_img, gen_ws = self.run_G(gen_z, gen_c, update_emas=True)
            else:
                gen_img, gen_ws, features = self.run_G(gen_z, gen_c, update_emas=True, feature_res=self.feature_res)
        if features is None:
            gen_logits, heads = self.run_D(gen_img, gen_c)
        else:
            gen_logits, heads, features = self.run_D(gen_img, gen_c, features=features)
        training_stats.report('Loss/scores/fake', gen_logits)
        training_stats.report('Loss/signs/fake', gen_logits.sign())
        loss = torch.nn.functional.softplus(gen_logits).flatten()
        terms = {'Loss/D/loss (fake)': loss}
        ctx = dnnlib.EasyDict(img=gen_img, c=gen_c, ws=gen_ws, logits=gen_logits, heads=heads, features=features)
        terms.update(self._extra_terms('Dgen', step, ctx))
        self._backward(step, 'Dgen', terms)
        return loss.detach()

    def _discriminator_real(self, step, real_img, real_c, do_Dmain, do_Dr1, loss_Dgen=None):
        """Logistic loss on reals and/or the R1 penalty r1_gamma/2 * |dD(x)/dx|^2 (Mescheder et al. 2018).

        `loss_Dgen` (the fake pass's per-sample loss) only joins the reported Loss/D/loss.
        """
        name = 'Dreal' if do_Dmain and not do_Dr1 else 'Dr1' if do_Dr1 and not do_Dmain else 'Dreal_Dr1'
        real_img = real_img.detach().requires_grad_(do_Dr1)
        real_logits, heads = self.run_D(real_img, real_c)
        training_stats.report('Loss/scores/real', real_logits)
        training_stats.report('Loss/signs/real', real_logits.sign())
        terms = {}
        if do_Dmain:
            loss_Dreal = torch.nn.functional.softplus(-real_logits).flatten()
            same_batch = loss_Dgen is not None and loss_Dgen.shape == loss_Dreal.shape
            training_stats.report('Loss/D/loss', loss_Dreal.detach() + loss_Dgen if same_batch else loss_Dreal)
            terms['Loss/D/loss (real)'] = loss_Dreal
            ctx = dnnlib.EasyDict(img=real_img, c=real_c, logits=real_logits, heads=heads)
            terms.update(self._extra_terms('Dreal', step, ctx))
        if do_Dr1:
            if not do_Dmain:  # Terms that join the R1 pass (with its lazy gain); in Dboth, Dreal has them.
                ctx = dnnlib.EasyDict(img=real_img.detach(), c=real_c, logits=real_logits, heads=heads)
                terms.update(self._extra_terms('Dr1', step, ctx))
            with conv2d_gradfix.no_weight_gradients():
                r1_grads, = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_img], create_graph=True,
                                                allow_unused=True)
            if r1_grads is None:  # D ignores its input: its gradient there is zero.
                r1_grads = torch.zeros_like(real_img)
            r1_penalty = r1_grads.square().sum(dim=[1, 2, 3])
            loss_Dr1 = r1_penalty * (self.r1_gamma / 2)
            training_stats.report('Loss/r1_penalty', r1_penalty)
            training_stats.report('Loss/D/reg', loss_Dr1)
            terms['Loss/D/reg'] = real_logits.flatten() * 0 + loss_Dr1
        self._backward(step, name, terms)

    # Helpers --------------------------------------------------------------

    def _extra_terms(self, pass_name, step, ctx):
        """{stat name: per-sample loss} of the extra terms that join `pass_name`, each reported."""
        ctx.update(phase=step.phase, cur_nimg=step.cur_nimg, G=self.G, D=self.D)
        losses = {}
        for term in self.extra_terms:
            if pass_name in term.passes:
                stat = f'Loss/{term.name}'
                loss = term(ctx)
                losses[stat] = training_stats.report(stat, loss) if term.reported(ctx) else loss
        return losses

    def _backward(self, step, pass_name, terms):
        """Note non-finite per-sample losses (on the device), then backpropagate mean(sum of terms) * gain."""
        if self.nonfinite is not None:
            for stat, loss in terms.items():
                self.nonfinite.check(loss, f'{stat} is {{}} in phase {step.phase} ({pass_name} pass) at image '
                                           f'{step.cur_nimg} (kimg {step.cur_nimg / 1000:.1f})')
        total = sum(loss.mean() for loss in terms.values())
        step.backwards_left -= 1
        if step.backwards_left == 0 and step.before_last_backward is not None:
            step.before_last_backward()
        total.mul(step.gain).backward()

#----------------------------------------------------------------------------

def _keyword_style(fn, keywords):
    """The first of `keywords` that module or function `fn` takes as an explicit argument, or None."""
    target = fn.forward if isinstance(fn, torch.nn.Module) else fn
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return None
    return next((k for k in keywords if k in params), None)

#----------------------------------------------------------------------------
