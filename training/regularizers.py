"""GGDR and GLeaD: discriminator regularisers that join the StyleGAN2 loss as LossTerms (--reg-type)."""

# Both need D's feature decoder (training/networks/decoder.py) and are built by name from the loss kwargs
# that training_options.json records (StyleGAN2Loss(extra_terms=[{class_name: ..., ...}])).
#
# GGDR (Lee et al. 2022): in the Dmain phase, on fakes, D's decoder must predict G's synthesis features at
# `resolution` (detached, moved by the same geometric augmentation as the image):
#     loss = weight * (1 - mean over pixels of the channel-wise cosine similarity)        per sample.
# GLeaD (Bai et al. 2023): heads on the decoder predict an image, a G feature at `feature_res` and a w; the
# live G's blocks above `feature_res` reconstruct the input from them (gradients reach D through G).
#     real:  weight 10 x LPIPS(reconstruction, real image)                        (Dmain, and Dr1 by default)
#     fake:  'image':   weight 3 x LPIPS(reconstruction, G(z))                    (pure GLeaD, the paper's rows)
#            'feature': weight 10 x cosine distance of the predicted feature to G's (GLeaD + GGDR)

import torch

from metrics import lpips
from training.loss import LossTerm
from training.networks.layers import block_shape

#----------------------------------------------------------------------------

def cosine_distance(predicted, target):
    """Per sample: 1 - mean over pixels of the cosine similarity along channels, [N]."""
    if predicted.shape != target.shape:
        raise ValueError(f'cosine_distance: predicted {list(predicted.shape)} and target {list(target.shape)} differ')
    similarity = torch.nn.functional.cosine_similarity(predicted.float(), target.float(), dim=1)  # [N, H, W]
    return 1 - similarity.mean(dim=[1, 2])


def resize(x, shape):
    """Bilinear resize of maps to (height, width) `shape`, no antialiasing (as GLeaD's code resizes its heads, with
    --glead-res-d above --glead-res-g); a no-op at that size."""
    if tuple(x.shape[-2:]) == tuple(shape):
        return x
    return torch.nn.functional.interpolate(x, size=tuple(shape), mode='bilinear', align_corners=False)

#----------------------------------------------------------------------------

class GGDRLoss(LossTerm):
    """GGDR: D's decoder output on a fake must point the way G's features there do (cosine distance)."""

    name = 'D/ggdr'
    passes = ('Dgen',)

    def __init__(self,
        resolution,         # Resolution of G's features the decoder predicts (--ggdr-res).
        weight,             # Loss weight (--ggdr-weight).
        device      = None, # Unused; every term is built with the loss's device.
    ):
        del device
        self.feature_res = int(resolution)
        self.weight = float(weight)

    def __call__(self, ctx):
        heads = _decoder_heads(ctx, 'GGDR')
        return cosine_distance(heads['features'], ctx.features.detach()) * self.weight

#----------------------------------------------------------------------------

class GLeaDLoss(LossTerm):
    """One GLeaD term: real ('real') or fake ('image' / 'feature') reconstruction through the live G."""

    def __init__(self,
        branch,                 # 'real', 'image' (fake, LPIPS against G(z)) or 'feature' (fake, GGDR-style cosine).
        feature_res,            # Resolution of the predicted G feature map (--glead-res-g).
        weight,                 # Loss weight.
        in_r1_phase = True,     # 'real' only: also in the lazy R1 phase, with its gain (as the public code).
        detector_dir = None,    # Folder with the LPIPS weight files (see metrics/lpips.py), None = cache/download.
        device      = 'cpu',    # Device of the LPIPS network.
    ):
        if branch not in ('real', 'image', 'feature'):
            raise ValueError(f'GLeaDLoss: branch must be "real", "image" or "feature", got {branch!r}')
        self.branch = branch
        self.resolution = int(feature_res)
        self.weight = float(weight)
        self.name = 'D/glead_real' if branch == 'real' else 'D/glead_fake'
        self.passes = (('Dreal', 'Dr1') if in_r1_phase else ('Dreal',)) if branch == 'real' else ('Dgen',)
        self.feature_res = self.resolution if branch == 'feature' else None
        self.lpips = None
        if branch != 'feature':
            self.lpips = lpips.load_lpips(device=torch.device(device), detector_dir=detector_dir)

    def __call__(self, ctx):
        heads = _decoder_heads(ctx, 'GLeaD', keys=('img', 'feature', 'w'))
        if self.branch == 'feature':
            return cosine_distance(resize(heads['feature'], ctx.features.shape[-2:]), ctx.features.detach()) * self.weight
        reconstruction = reconstruct(ctx.G, heads, self.resolution)
        target = ctx.img.detach().to(reconstruction.dtype)
        return self.perceptual_distance(reconstruction, target) * self.weight

    def perceptual_distance(self, x, y):
        """LPIPS per sample; images smaller than AlexNet can take (e.g. 16x16 test runs) are upsampled first, the
        shorter side to the power of two above that limit."""
        height, width = x.shape[-2:]
        if min(height, width) < lpips.MIN_RESOLUTION:
            side = 2 ** (lpips.MIN_RESOLUTION - 1).bit_length()
            size = (side * height // min(height, width), side * width // min(height, width))
            x, y = (torch.nn.functional.interpolate(t, size=size, mode='bilinear', align_corners=False) for t in (x, y))
        return self.lpips(x, y)


def reconstruct(G, heads, feature_res):
    """GLeaD's reconstruction: G's blocks above feature_res run from the predicted feature, image and w."""
    shape = block_shape(feature_res, getattr(G.synthesis, 'init_res', None))  # Networks of other codes: square.
    feature = resize(heads['feature'], shape)
    img = resize(heads['img'], shape)
    return G.synthesis.forward_from(feature_res, feature, img, heads['w'])


def _decoder_heads(ctx, method, keys=('features',)):
    heads = ctx.heads[0] if ctx.heads and isinstance(ctx.heads[0], dict) else {}
    missing = [key for key in keys if key not in heads]
    if missing:
        raise ValueError(f'{method} needs a discriminator with the feature decoder{" and GLeaD heads" * (method == "GLeaD")} '
                         f'(Discriminator(decoder_res=...)); its outputs lack {", ".join(missing)}')
    return heads

#----------------------------------------------------------------------------
