"""GGDR's feature decoder on the discriminator, and GLeaD's heads on top of it (D's extra outputs)."""

# GGDR (Lee et al. 2022, "Generator Knows What Discriminator Should Learn"): a U-Net-like decoder turns
# D's block outputs back into a feature map at `resolution`, shaped like G's synthesis features there, so
# D can be trained to predict what G "thought" when it drew the image. GLeaD (Bai et al. 2023) adds three
# 1x1 heads on the decoder output: an image, a G feature map and a w vector, from which the live G
# reconstructs the input (training/regularizers.py). Both heads are optional parts of
# training.networks.Discriminator (decoder_res, glead_feature_res), so a plain D is unchanged.

import torch

from torch_utils import misc
from torch_utils import persistence
from training.networks.layers import Conv2dLayer, block_shape

#----------------------------------------------------------------------------

@persistence.persistent_class
class FeatureDecoder(torch.nn.Module):
    """D's features at 4x4, 8x8, ... -> one map at `resolution` with channels[resolution] channels.

    One layer per resolution 8, 16, ..., resolution: a 1x1 convolution (equalised lr, bias, linear)
    followed by 2x FIR upsampling. The layer at 8 reads D's 4x4 features; the layer at r > 8 reads the
    previous layer's output concatenated with D's features at r / 2. Non-square when D's are (init_res).
    """

    init_res = None  # The default for decoders pickled before non-square networks existed.

    def __init__(self,
        channels,                           # {resolution: channels} of D's features (and the output).
        resolution,                         # Output resolution, a power of two >= 8.
        resample_filter     = [1, 3, 3, 1], # FIR low-pass filter used when upsampling.
        init_res            = None,         # D's (h0, w0) at nominal resolution 4, None: square.
    ):
        if not (isinstance(resolution, int) and resolution >= 8 and resolution & (resolution - 1) == 0):
            raise ValueError(f'FeatureDecoder: resolution must be a power of two >= 8, got {resolution!r}')
        super().__init__()
        self.resolution = resolution
        self.init_res = None if init_res is None else tuple(init_res)
        self.resolutions = [2 ** i for i in range(3, resolution.bit_length())]
        self.out_channels = channels[resolution]
        for res in self.resolutions:
            in_channels = channels[4] if res == 8 else channels[res // 2] * 2
            setattr(self, f'dec{res}', Conv2dLayer(in_channels, channels[res], kernel_size=1, activation='linear',
                                                   up=2, resample_filter=resample_filter))

    def forward(self, d_features):
        """d_features: {resolution: D's features there [N, C, res, res]} for 4 .. resolution / 2."""
        x = None
        for res in self.resolutions:
            skip = d_features[res // 2].to(dtype=torch.float32, memory_format=torch.contiguous_format)
            x = skip if x is None else torch.cat([x, skip], dim=1)
            x = getattr(self, f'dec{res}')(x)
        misc.assert_shape(x, [None, self.out_channels, *block_shape(self.resolution, self.init_res)])
        return x

#----------------------------------------------------------------------------

@persistence.persistent_class
class GLeaDHeads(torch.nn.Module):
    """GLeaD: decoder output -> predicted image, G feature map (both at the decoder's resolution) and w."""

    def __init__(self,
        in_channels,        # Channels of the decoder output.
        img_channels,       # Channels of the predicted image.
        feature_channels,   # Channels of G's synthesis features at the resolution they are predicted for.
        w_dim,              # Dimensionality of the predicted w (G's w_dim).
    ):
        super().__init__()
        self.to_img = Conv2dLayer(in_channels, img_channels, kernel_size=1, activation='linear')
        self.to_feature = Conv2dLayer(in_channels, feature_channels, kernel_size=1, activation='linear')
        self.to_w = Conv2dLayer(in_channels, w_dim, kernel_size=1, activation='linear')

    def forward(self, x):
        """{'img': [N, img_channels, H, W], 'feature': [N, feature_channels, H, W], 'w': [N, w_dim]}."""
        return dict(img=self.to_img(x), feature=self.to_feature(x), w=self.to_w(x).mean(dim=[2, 3]))

#----------------------------------------------------------------------------
