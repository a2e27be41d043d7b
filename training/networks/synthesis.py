"""StyleGAN2's synthesis block with the orig / skip / resnet connections, and what every block type shares."""

# Every synthesis block type (this one, squeeze.py, ...) has the same interface, so SynthesisNetwork
# can treat them alike (see SYNTHESIS_BLOCKS in generator.py):
#   __init__(in_channels, out_channels, w_dim, resolution, img_channels, is_last, architecture,
#            resample_filter, conv_clamp, use_fp16, fp16_channels_last, **own_kwargs)
#   .num_conv_ws, .num_torgb  how many ws the block consumes: ws[:, :num_conv_ws] go to its modulated
#                           convolutions, ws[:, num_conv_ws] to its ToRGB, which is also the first w of
#                           the next block (as in stylegan2-ada-pytorch), so
#                           num_ws = sum(num_conv_ws) + num_torgb(last).
#   forward(x, img, ws, force_fp32=False, fused_modconv=None, **layer_kwargs) -> (x, img)
#   .OWN_KWARGS             (optional) names of arguments only this block type takes, so that passing
#                           them with another architecture is a clear error.

import numpy as np
import torch

from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import upfirdn2d
from training.networks.layers import (Conv2dLayer, SynthesisLayer, ToRGBLayer, block_dtype_and_format, shape_kwargs,
                                      shape_of)

#----------------------------------------------------------------------------
# Helpers shared by block types.

def default_fused_modconv(training, dtype, x):
    """Fused grouped conv at inference in fp32 (or batch 1); scale-conv-scale while training (cheaper backward)."""
    with misc.suppress_tracer_warnings():  # The batch size becomes a constant when tracing.
        return (not training) and (dtype == torch.float32 or int(x.shape[0]) == 1)


def block_input(block, x, ws, dtype, memory_format):
    """The learned 4x4 constant for the first block, otherwise the previous block's features, cast for this block."""
    if block.in_channels == 0:
        x = block.const.to(dtype=dtype, memory_format=memory_format)
        return x.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
    height, width = shape_of(block)
    misc.assert_shape(x, [None, block.in_channels, height // 2, width // 2])
    return x.to(dtype=dtype, memory_format=memory_format)


def add_to_image(block, img, y):
    """Image skip connection: upsample the running image 2x and add this block's ToRGB output (paper Eq. 6)."""
    y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
    if img is None:
        return y
    height, width = shape_of(block)
    misc.assert_shape(img, [None, block.img_channels, height // 2, width // 2])
    return upfirdn2d.upsample2d(img, block.resample_filter).add_(y)

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisBlock(torch.nn.Module):
    """One resolution of StyleGAN2's generator: (2x up) conv0, conv1, and an image output per `architecture`.

    orig: only the last block has a ToRGB. skip: every block's ToRGB is added to the upsampled image
    of the previous blocks. resnet: a 1x1 upsampling shortcut is added to conv1's output (both scaled
    by sqrt(1/2)), and only the last block has a ToRGB.
    """

    ARCHITECTURES = ('orig', 'skip', 'resnet')
    shape = None  # (height, width) when not square; the default for blocks pickled before non-square networks.

    def __init__(self,
        in_channels,                        # Number of input channels, 0 = first block (learned constant input).
        out_channels,                       # Number of output channels.
        w_dim,                              # Intermediate latent (W) dimensionality.
        resolution,                         # Resolution of this block.
        img_channels,                       # Number of image channels.
        is_last,                            # Is this the last block?
        architecture        = 'skip',       # 'orig', 'skip' or 'resnet'.
        resample_filter     = [1, 3, 3, 1], # FIR low-pass filter used when upsampling.
        conv_clamp          = None,         # Clamp conv outputs to +-conv_clamp, None = no clamping.
        use_fp16            = False,        # Run this block in fp16?
        fp16_channels_last  = False,        # Use channels_last memory format together with fp16?
        shape               = None,         # Output (height, width) when not resolution x resolution.
        **layer_kwargs,                     # Arguments for SynthesisLayer (e.g. use_noise, activation).
    ):
        if architecture not in self.ARCHITECTURES:
            raise ValueError(f'SynthesisBlock: architecture must be one of {", ".join(self.ARCHITECTURES)}, '
                             f'got {architecture!r}')
        super().__init__()
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.shape = None if shape is None else tuple(shape)
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = (use_fp16 and fp16_channels_last)
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        common = dict(w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp, channels_last=self.channels_last,
                      **shape_kwargs(self.shape))

        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, *shape_of(self)]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, resample_filter=resample_filter,
                                        **common, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **common, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == 'skip':
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp,
                                    channels_last=self.channels_last)
            self.num_torgb += 1
        if in_channels != 0 and architecture == 'resnet':
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter, channels_last=self.channels_last)

    @property
    def num_conv_ws(self):
        """ws taken by the convolutions: one each, so the official attribute num_conv counts them."""
        return self.num_conv

    def forward(self, x, img, ws, force_fp32=False, fused_modconv=None, **layer_kwargs):
        misc.assert_shape(ws, [None, self.num_conv_ws + self.num_torgb, self.w_dim])
        w_iter = iter(ws.unbind(dim=1))
        dtype, memory_format = block_dtype_and_format(self.use_fp16, self.channels_last, force_fp32)
        x = block_input(self, x, ws, dtype, memory_format)
        if fused_modconv is None:
            fused_modconv = default_fused_modconv(self.training, dtype, x)

        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        elif self.architecture == 'resnet':
            shortcut = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, gain=np.sqrt(0.5), **layer_kwargs)
            x = shortcut.add_(x)
        else:
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)

        if self.num_torgb:
            img = add_to_image(self, img, self.torgb(x, next(w_iter), fused_modconv=fused_modconv))
        elif img is not None:
            img = upfirdn2d.upsample2d(img, self.resample_filter)
        assert x.dtype == dtype
        return x, img

#----------------------------------------------------------------------------
