"""The image squeeze connection (Park & Shin, "Rethinking Image Skip Connections in StyleGAN2", Sec. III-B, Fig. 2)."""

import math

import torch

from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import upfirdn2d
from training.networks.layers import SynthesisLayer, ToRGBLayer, block_dtype_and_format, shape_kwargs, shape_of
from training.networks.synthesis import add_to_image, block_input, default_fused_modconv

# Where the block's ToRGB reads from: the paper's design and the two placements of Table VII.
TORGB_SOURCE = {
    'none':                     'f_s',  # Fig. 2: the squeezed, low-dimensional features.
    'no_blend':                 'f_s',  # Fig. 6(a): as Fig. 2, but f_o = f_e (no concat + 1x1 blend).
    'torgb_before_squeeze':     'f_i',  # Fig. 6(b): ToRGB on the full-width features before the squeeze.
    'torgb_after_excitation':   'f_e',  # Fig. 6(c): ToRGB on the full-width features after the excitation.
}
SQUEEZE_ABLATIONS = tuple(TORGB_SOURCE)

# What each conv of the block produces, in the paper's notation.
STAGE_OUTPUT = {'conv0': 'f_i', 'squeeze': 'f_s', 'excite': 'f_e', 'blend': 'f_o'}

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
    Conv weights per block with c in and out channels: 9c^2 + 2 * 9c^2/r + 2c^2 = (11 + 18/r) c^2
    (the paper's Sec. III-B writes 10 + 18/r; the 1x1 blend on 2c channels alone is 2c^2).

    The 4x4 block (in_channels == 0) has no upsampling conv to give f_i; it is StyleGAN2's first
    block unchanged (const -> conv1 -> torgb, same names and shapes as the skip G's b4).

    The last block stops at ToRGB's input: in Fig. 2 its excite and blend feed nothing that reaches
    the image, so they are not built (they would be parameters without gradients, which also breaks
    DDP). With the ablations the last block likewise ends at the ToRGB tap (e.g. only conv0 for
    torgb_before_squeeze). With this, G's parameter counts at the paper's 256x256 setting are within
    1% of Table V (see README).

    ws: each conv takes its own w, in the order conv0, squeeze, excite, blend (num_conv_ws = 4; 3 with
    squeeze_ablation='no_blend'; 1 for the 4x4 block; fewer for the last block, as above), and ToRGB
    takes the next w, which is shared with the next block's conv0, as in StyleGAN2. A 256x256 squeeze
    G (r = 8) has num_ws = 1 + 5*4 + 2 + 1 = 24 (the skip G has 14).
    """

    OWN_KWARGS = ('squeeze_ratio', 'squeeze_ablation')  # Arguments only this block type takes.
    shape = None  # (height, width) when not square; the default for blocks pickled before non-square networks.

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
        shape               = None,         # Output (height, width) when not resolution x resolution.
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
        self.shape = None if shape is None else tuple(shape)
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.squeeze_ablation = squeeze_ablation
        self.use_fp16 = use_fp16
        self.channels_last = (use_fp16 and fp16_channels_last)
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.squeeze_channels = max(1, math.ceil(out_channels / squeeze_ratio))
        common = dict(w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp, channels_last=self.channels_last,
                      **shape_kwargs(self.shape))

        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, *shape_of(self)]))
            self.conv1 = SynthesisLayer(out_channels, out_channels, **common, **layer_kwargs)
            self.stages = ('conv1',)
            torgb_channels = out_channels
        else:
            c, c_s = out_channels, self.squeeze_channels
            self.stages = self._stages(is_last, squeeze_ablation)
            shapes = dict(conv0=(in_channels, c, 3), squeeze=(c, c_s, 3), excite=(c_s, c, 3), blend=(2 * c, c, 1))
            for name in self.stages:
                in_ch, out_ch, kernel_size = shapes[name]
                up_kwargs = dict(up=2, resample_filter=resample_filter) if name == 'conv0' else {}
                layer = SynthesisLayer(in_ch, out_ch, kernel_size=kernel_size, **up_kwargs, **common, **layer_kwargs)
                setattr(self, name, layer)
            torgb_channels = c_s if TORGB_SOURCE[squeeze_ablation] == 'f_s' else c
        self.torgb = ToRGBLayer(torgb_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp,
                                channels_last=self.channels_last)
        self.num_torgb = 1

    @property
    def num_conv_ws(self):
        """ws taken by this block's modulated convolutions: one per stage (the ToRGB w is counted apart)."""
        return len(self.stages)

    @staticmethod
    def _stages(is_last, squeeze_ablation):
        """Names of the convs to build, in order. The last block stops at ToRGB's input: nothing after it reaches the image."""
        stages = ['conv0', 'squeeze', 'excite'] + ([] if squeeze_ablation == 'no_blend' else ['blend'])
        if is_last:
            tap = [name for name, feature in STAGE_OUTPUT.items() if feature == TORGB_SOURCE[squeeze_ablation]][0]
            stages = stages[:stages.index(tap) + 1]
        return tuple(stages)

    def forward(self, x, img, ws, force_fp32=False, fused_modconv=None, **layer_kwargs):
        misc.assert_shape(ws, [None, self.num_conv_ws + self.num_torgb, self.w_dim])
        w_iter = iter(ws.unbind(dim=1))
        dtype, memory_format = block_dtype_and_format(self.use_fp16, self.channels_last, force_fp32)
        x = block_input(self, x, ws, dtype, memory_format)
        if fused_modconv is None:
            fused_modconv = default_fused_modconv(self.training, dtype, x)
        layer = dict(fused_modconv=fused_modconv, **layer_kwargs)

        features = dict()
        for name in self.stages:
            layer_input = torch.cat([features['f_i'], features['f_e']], dim=1) if name == 'blend' else x
            x = getattr(self, name)(layer_input, next(w_iter), **layer)
            features[STAGE_OUTPUT.get(name, name)] = x
        torgb_input = features[TORGB_SOURCE[self.squeeze_ablation]] if self.in_channels else x
        img = add_to_image(self, img, self.torgb(torgb_input, next(w_iter), fused_modconv=fused_modconv))
        assert x.dtype == dtype
        return x, img

#----------------------------------------------------------------------------
