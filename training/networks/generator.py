"""The synthesis network (a stack of blocks chosen by `architecture`) and the Generator = mapping + synthesis."""

import numpy as np
import torch

from torch_utils import misc
from torch_utils import persistence
from training.networks.layers import MappingNetwork, channels_per_resolution, fp16_min_resolution
from training.networks.squeeze import SqueezeBlock
from training.networks.synthesis import SynthesisBlock

# architecture name -> block class. A new connection type is one class plus one line here.
SYNTHESIS_BLOCKS = {
    'orig':     SynthesisBlock,
    'skip':     SynthesisBlock,
    'resnet':   SynthesisBlock,
    'squeeze':  SqueezeBlock,
}

#----------------------------------------------------------------------------

def _check_kwargs_belong_to(block_class, architecture, block_kwargs):
    """Name the architecture a block-specific argument (e.g. squeeze_ratio) belongs to, instead of a TypeError deep inside."""
    own = set(getattr(block_class, 'OWN_KWARGS', ()))
    for name, other_class in SYNTHESIS_BLOCKS.items():
        for key in set(getattr(other_class, 'OWN_KWARGS', ())) - own:
            if key in block_kwargs:
                raise ValueError(f'synthesis argument {key} applies only to architecture={name!r}, '
                                 f'not architecture={architecture!r}')

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisNetwork(torch.nn.Module):
    """ws [batch, num_ws, w_dim] -> image [batch, img_channels, img_resolution, img_resolution], block b4 to bN."""

    def __init__(self,
        w_dim,                      # Intermediate latent (W) dimensionality.
        img_resolution,             # Output resolution, a power of two >= 4.
        img_channels,               # Number of image channels.
        channel_base    = 32768,    # Channels at resolution res = min(channel_base // res, channel_max).
        channel_max     = 512,      # Maximum number of channels in any block.
        num_fp16_res    = 0,        # Run the N highest resolutions in fp16.
        **block_kwargs,             # Arguments for the blocks: architecture ('skip'), conv_clamp, squeeze_ratio, ...
    ):
        if not (isinstance(img_resolution, int) and img_resolution >= 4 and img_resolution & (img_resolution - 1) == 0):
            raise ValueError(f'img_resolution must be a power of two >= 4, got {img_resolution!r}')
        architecture = block_kwargs.get('architecture', 'skip')
        if architecture not in SYNTHESIS_BLOCKS:
            raise ValueError(f'synthesis architecture must be one of {", ".join(SYNTHESIS_BLOCKS)}, got {architecture!r}')
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(2, self.img_resolution_log2 + 1)]
        channels = channels_per_resolution(self.block_resolutions, channel_base, channel_max)
        fp16_resolution = fp16_min_resolution(img_resolution, num_fp16_res)
        block_class = SYNTHESIS_BLOCKS[architecture]
        _check_kwargs_belong_to(block_class, architecture, block_kwargs)

        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = (res == img_resolution)
            block = block_class(channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim, resolution=res,
                                img_channels=img_channels, is_last=is_last, use_fp16=(res >= fp16_resolution),
                                **block_kwargs)
            self.num_ws += block.num_conv_ws + (block.num_torgb if is_last else 0)
            setattr(self, f'b{res}', block)

    def forward(self, ws, **block_kwargs):
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim])
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f'b{res}')
            block_ws = ws.narrow(1, w_idx, block.num_conv_ws + block.num_torgb)
            x, img = block(x, img, block_ws, **block_kwargs)
            w_idx += block.num_conv_ws
        return img

#----------------------------------------------------------------------------

@persistence.persistent_class
class Generator(torch.nn.Module):
    """z, c -> image: MappingNetwork to ws, then SynthesisNetwork."""

    def __init__(self,
        z_dim,                      # Latent (Z) dimensionality.
        c_dim,                      # Label (C) dimensionality, 0 = unconditional.
        w_dim,                      # Intermediate latent (W) dimensionality.
        img_resolution,             # Output resolution.
        img_channels,               # Number of image channels.
        mapping_kwargs      = {},   # Arguments for MappingNetwork.
        synthesis_kwargs    = {},   # Arguments for SynthesisNetwork (and its blocks).
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)

#----------------------------------------------------------------------------
