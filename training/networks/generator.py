"""The synthesis network (a stack of blocks chosen by `architecture`) and the Generator = mapping + synthesis."""

import numpy as np
import torch

from torch_utils import misc
from torch_utils import persistence
from training.networks.layers import (MappingNetwork, block_shape, channels_per_resolution, check_init_res,
                                      fp16_min_resolution)
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
    """ws [batch, num_ws, w_dim] -> image [batch, img_channels, H, W], block b4 to bN; H = W = img_resolution unless
    init_res makes the blocks non-square (img_shape)."""

    init_res = None  # The default for networks pickled before non-square ones existed.

    def __init__(self,
        w_dim,                      # Intermediate latent (W) dimensionality.
        img_resolution,             # Output resolution, a power of two >= 4.
        img_channels,               # Number of image channels.
        channel_base    = 32768,    # Channels at resolution res = min(channel_base // res, channel_max).
        channel_max     = 512,      # Maximum number of channels in any block.
        num_fp16_res    = 0,        # Run the N highest resolutions in fp16.
        init_res        = None,     # (h0, w0) of the first block; the image is (h0, w0) * img_resolution / 4. None: (4, 4).
        **block_kwargs,             # Arguments for the blocks: architecture ('skip'), conv_clamp, squeeze_ratio, ...
    ):
        init_res = check_init_res(init_res)
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
        self.init_res = init_res
        self.block_resolutions = [2 ** i for i in range(2, self.img_resolution_log2 + 1)]
        channels = channels_per_resolution(self.block_resolutions, channel_base, channel_max)
        fp16_resolution = fp16_min_resolution(img_resolution, num_fp16_res)
        block_class = SYNTHESIS_BLOCKS[architecture]
        _check_kwargs_belong_to(block_class, architecture, block_kwargs)

        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = (res == img_resolution)
            shape = {} if init_res is None else dict(shape=block_shape(res, init_res))
            block = block_class(channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim, resolution=res,
                                img_channels=img_channels, is_last=is_last, use_fp16=(res >= fp16_resolution),
                                **shape, **block_kwargs)
            self.num_ws += block.num_conv_ws + (block.num_torgb if is_last else 0)
            setattr(self, f'b{res}', block)

    def forward(self, ws, feature_res=None, **block_kwargs):
        """Image [N, img_channels, R, R]; with feature_res, (image, features): the output of the block at that
        resolution (what it hands to the next block; for squeeze blocks the blend output f_o), in fp32.

        feature_res must be below img_resolution: the last block's output feeds no other block.
        """
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim])
        if feature_res is not None and feature_res not in self.block_resolutions[:-1]:
            raise ValueError(f'feature_res must be one of {self.block_resolutions[:-1]}, got {feature_res!r}')
        ws = ws.to(torch.float32)
        x = img = features = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f'b{res}')
            block_ws = ws.narrow(1, w_idx, block.num_conv_ws + block.num_torgb)
            x, img = block(x, img, block_ws, **block_kwargs)
            w_idx += block.num_conv_ws
            if res == feature_res:
                features = x.to(torch.float32)
        return img if feature_res is None else (img, features)

    def forward_from(self, resolution, x, img, w, **block_kwargs):
        """Continue synthesis above `resolution` from its features x and image img, every layer taking the
        same w [N, w_dim] (GLeaD's reconstruction). img is ignored by architectures without an image path
        below the last block (orig, resnet)."""
        if resolution not in self.block_resolutions[:-1]:
            raise ValueError(f'resolution must be one of {self.block_resolutions[:-1]}, got {resolution!r}')
        misc.assert_shape(w, [None, self.w_dim])
        if not self.has_image_path:
            img = None
        for res in self.block_resolutions:
            if res > resolution:
                block = getattr(self, f'b{res}')
                block_ws = w.to(torch.float32).unsqueeze(1).repeat([1, block.num_conv_ws + block.num_torgb, 1])
                x, img = block(x, img, block_ws, **block_kwargs)
        return img

    @property
    def img_shape(self):
        """(height, width) of the images."""
        return block_shape(self.img_resolution, self.init_res)

    @property
    def has_image_path(self):
        """Whether blocks below the last one add to a running image (skip, squeeze), as opposed to orig/resnet."""
        return any(getattr(self, f'b{res}').num_torgb for res in self.block_resolutions[:-1])

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

    @property
    def img_shape(self):
        """(height, width) of the images: img_resolution x img_resolution unless synthesis_kwargs set init_res."""
        return self.synthesis.img_shape

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)

#----------------------------------------------------------------------------
