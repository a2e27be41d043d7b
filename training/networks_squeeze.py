"""The image squeeze connection (Park & Shin, "Rethinking Image Skip Connections in StyleGAN2", Sec. III-B, Fig. 2)."""

import math

import torch

from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import upfirdn2d
from training.networks_layers import SynthesisLayer, ToRGBLayer
from training.networks_synthesis import add_to_image, block_dtype_and_format, block_input, default_fused_modconv

# Where the block's ToRGB reads from: the paper's design and the two placements of Table VII.
TORGB_SOURCE = {
    'none':                     'f_s',  # Fig. 2: the squeezed, low-dimensional features.
    'no_blend':                 'f_s',  # Fig. 6(a): as Fig. 2, but f_o = f_e (no concat + 1x1 blend).
    'torgb_before_squeeze':     'f_i',  # Fig. 6(b): ToRGB on the full-width features before the squeeze.
    'torgb_after_excitation':   'f_e',  # Fig. 6(c): ToRGB on the full-width features after the excitation.
}
SQUEEZE_ABLATIONS = tuple(TORGB_SOURCE)

#----------------------------------------------------------------------------

@persistence.persistent_class
class SqueezeBlock(torch.nn.Module):
    """A synthesis block whose image connection is built from squeezed features (paper Fig. 2).

    For a block with c output channels:
        f_i = conv0(x)               3x3 modulated conv with 2x upsampling, c channels
        f_s = squeeze(f_i)           3x3 modulated conv, c / squeeze_ratio channels
        img = up(img) + torgb(f_s)   image connection from low-dimensional features (Eq. 7)
        f_e = excite(f_s)            3x3 modulated conv, c channels
        f_o = blend(cat(f_i, f_e))   1x1 modulated conv, 2c -> c channels (feature blending)
    Every conv except ToRGB is a SynthesisLayer (modulated, demodulated, noise, bias, lrelu, clamp).

    The 4x4 block (in_channels == 0) has no upsampling conv to give f_i; it is StyleGAN2's first
    block unchanged (const -> conv1 -> torgb, same names and shapes), so the squeeze G keeps the
    skip G's 4x4 parameters, and the parameter counts match the paper's Table V within 1.2%.

    ws: each conv takes its own w, in the order conv0, squeeze, excite, blend (num_conv = 4, or 3
    with squeeze_ablation='no_blend'; 1 for the 4x4 block), and ToRGB takes the next w, which is
    shared with the next block's conv0, as in StyleGAN2. A 256x256 squeeze G has num_ws = 1 + 6*4 + 1 = 26
    (the skip G has 14).
    """

    def __init__(self,
        in_channels,                        # Number of input channels, 0 = first block (learned constant input).
        out_channels,                       # Number of output channels (c).
        w_dim,                              # Intermediate latent (W) dimensionality.
        resolution,                         # Resolution of this block.
        img_channels,                       # Number of image channels.
        is_last,                            # Is this the last block?
        architecture        = 'squeeze',    # Must be 'squeeze'; kept so every block type takes the same arguments.
        resample_filter     = [1, 3, 3, 1], # FIR low-pass filter used when upsampling.
        conv_clamp          = None,         # Clamp conv outputs to +-conv_clamp, None = no clamping.
        use_fp16            = False,        # Run this block in fp16?
        fp16_channels_last  = False,        # Use channels_last memory format together with fp16?
        squeeze_ratio       = 8,            # Channel squeeze ratio r: f_s has ceil(c / r) channels.
        squeeze_ablation    = 'none',       # 'none', 'no_blend', 'torgb_before_squeeze', 'torgb_after_excitation'.
        **layer_kwargs,                     # Arguments for SynthesisLayer (e.g. use_noise, activation).
    ):
        if architecture != 'squeeze':
            raise ValueError(f'SqueezeBlock: architecture must be "squeeze", got {architecture!r}')
        if squeeze_ablation not in SQUEEZE_ABLATIONS:
            raise ValueError(f'squeeze_ablation must be one of {", ".join(SQUEEZE_ABLATIONS)}, got {squeeze_ablation!r}')
        if not isinstance(squeeze_ratio, (int, float)) or isinstance(squeeze_ratio, bool) or not squeeze_ratio >= 1:
            raise ValueError(f'squeeze_ratio must be a number >= 1, got {squeeze_ratio!r}')
        super().__init__()
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.squeeze_ablation = squeeze_ablation
        self.use_fp16 = use_fp16
        self.channels_last = (use_fp16 and fp16_channels_last)
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.squeeze_channels = max(1, math.ceil(out_channels / squeeze_ratio))
        common = dict(w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp, channels_last=self.channels_last)

        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
            self.conv1 = SynthesisLayer(out_channels, out_channels, **common, **layer_kwargs)
            torgb_channels = out_channels
            self.num_conv = 1
        else:
            c, c_s = out_channels, self.squeeze_channels
            self.conv0 = SynthesisLayer(in_channels, c, up=2, resample_filter=resample_filter, **common, **layer_kwargs)
            self.squeeze = SynthesisLayer(c, c_s, **common, **layer_kwargs)
            self.excite = SynthesisLayer(c_s, c, **common, **layer_kwargs)
            self.num_conv = 3
            if squeeze_ablation != 'no_blend':
                self.blend = SynthesisLayer(2 * c, c, kernel_size=1, **common, **layer_kwargs)
                self.num_conv += 1
            torgb_channels = c_s if TORGB_SOURCE[squeeze_ablation] == 'f_s' else c
        self.torgb = ToRGBLayer(torgb_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp,
                                channels_last=self.channels_last)
        self.num_torgb = 1

    def forward(self, x, img, ws, force_fp32=False, fused_modconv=None, **layer_kwargs):
        misc.assert_shape(ws, [None, self.num_conv + self.num_torgb, self.w_dim])
        w_iter = iter(ws.unbind(dim=1))
        dtype, memory_format = block_dtype_and_format(self.use_fp16, self.channels_last, force_fp32)
        x = block_input(self, x, ws, dtype, memory_format)
        if fused_modconv is None:
            fused_modconv = default_fused_modconv(self.training, dtype, x)
        layer = dict(fused_modconv=fused_modconv, **layer_kwargs)

        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), **layer)
            torgb_input = x
        else:
            features = dict(f_i=self.conv0(x, next(w_iter), **layer))
            features['f_s'] = self.squeeze(features['f_i'], next(w_iter), **layer)
            features['f_e'] = self.excite(features['f_s'], next(w_iter), **layer)
            if self.squeeze_ablation == 'no_blend':
                x = features['f_e']
            else:
                x = self.blend(torch.cat([features['f_i'], features['f_e']], dim=1), next(w_iter), **layer)
            torgb_input = features[TORGB_SOURCE[self.squeeze_ablation]]

        img = add_to_image(self, img, self.torgb(torgb_input, next(w_iter), fused_modconv=fused_modconv))
        assert x.dtype == dtype
        return x, img

#----------------------------------------------------------------------------
