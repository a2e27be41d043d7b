"""StyleGAN2's discriminator: orig / skip / resnet blocks, minibatch stddev, epilogue and projection conditioning."""

import numpy as np
import torch

from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import upfirdn2d
from training.networks.decoder import FeatureDecoder, GLeaDHeads
from training.networks.layers import (Conv2dLayer, FullyConnectedLayer, MappingNetwork, block_dtype_and_format,
                                      block_shape, check_init_res, shape_of,
                                      channels_per_resolution, fp16_min_resolution)

ARCHITECTURES = ('orig', 'skip', 'resnet')


def _check_architecture(architecture, where):
    if architecture not in ARCHITECTURES:
        raise ValueError(f'{where}: architecture must be one of {", ".join(ARCHITECTURES)}, got {architecture!r}')

#----------------------------------------------------------------------------

@persistence.persistent_class
class DiscriminatorBlock(torch.nn.Module):
    """One resolution of D: (fromrgb), conv0, conv1 with 2x downsampling, and a 1x1 shortcut for 'resnet'."""

    shape = None  # Input (height, width) when not square; the default for blocks pickled before non-square networks.

    def __init__(self,
        in_channels,                        # Number of input channels, 0 = first block (reads the image).
        tmp_channels,                       # Number of channels inside the block.
        out_channels,                       # Number of output channels.
        resolution,                         # Input resolution of this block.
        img_channels,                       # Number of image channels.
        first_layer_idx,                    # Index of this block's first layer in D (for Freeze-D).
        architecture        = 'resnet',     # 'orig', 'skip' or 'resnet'.
        activation          = 'lrelu',      # Activation name from bias_act.activation_funcs.
        resample_filter     = [1, 3, 3, 1], # FIR low-pass filter used when downsampling.
        conv_clamp          = None,         # Clamp conv outputs to +-conv_clamp, None = no clamping.
        use_fp16            = False,        # Run this block in fp16?
        fp16_channels_last  = False,        # Use channels_last memory format together with fp16?
        freeze_layers       = 0,            # Freeze-D: layers with index < freeze_layers are not trained.
        shape               = None,         # Input (height, width) when not resolution x resolution.
    ):
        if in_channels not in (0, tmp_channels):
            raise ValueError(f'DiscriminatorBlock: in_channels must be 0 or tmp_channels ({tmp_channels}), got {in_channels}')
        _check_architecture(architecture, 'DiscriminatorBlock')
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.shape = None if shape is None else tuple(shape)
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = (use_fp16 and fp16_channels_last)
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.num_layers = 0

        def next_trainable():
            trainable = (first_layer_idx + self.num_layers) >= freeze_layers
            self.num_layers += 1
            return trainable

        common = dict(activation=activation, conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0 or architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, trainable=next_trainable(), **common)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, trainable=next_trainable(), **common)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, down=2, resample_filter=resample_filter,
                                 trainable=next_trainable(), **common)
        if architecture == 'resnet':
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    resample_filter=resample_filter, trainable=next_trainable(),
                                    channels_last=self.channels_last)

    def forward(self, x, img, force_fp32=False):
        dtype, memory_format = block_dtype_and_format(self.use_fp16, self.channels_last, force_fp32)
        height, width = shape_of(self)
        if x is not None:
            misc.assert_shape(x, [None, self.in_channels, height, width])
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.in_channels == 0 or self.architecture == 'skip':
            misc.assert_shape(img, [None, self.img_channels, height, width])
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = upfirdn2d.downsample2d(img, self.resample_filter) if self.architecture == 'skip' else None

        if self.architecture == 'resnet':
            shortcut = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=np.sqrt(0.5))
            x = shortcut.add_(x)
        else:
            x = self.conv1(self.conv0(x))
        assert x.dtype == dtype
        return x, img

#----------------------------------------------------------------------------

@persistence.persistent_class
class MinibatchStdLayer(torch.nn.Module):
    """Append the stddev across groups of samples as extra channels (Karras et al. 2018), against mode collapse."""

    def __init__(self,
        group_size,                 # Samples per group, None = the whole minibatch.
        num_channels    = 1,        # Number of appended channels (channel groups averaged separately).
    ):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x):
        n, c, h, w = x.shape
        with misc.suppress_tracer_warnings():  # torch.min keeps the group size traceable.
            g = torch.min(torch.as_tensor(self.group_size), torch.as_tensor(n)) if self.group_size is not None else n
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)       # [group, n/group, F, C/F, H, W]
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # Stddev over each group.
        y = y.mean(dim=[2, 3, 4])                   # [n/group, F]: averaged over channels and pixels.
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

#----------------------------------------------------------------------------

@persistence.persistent_class
class DiscriminatorEpilogue(torch.nn.Module):
    """D's 4x4 head: (fromrgb), mbstd, conv, fc, out; with labels, the projection onto the mapped label."""

    shape = None  # Input (height, width) when not square; the default for heads pickled before non-square networks.

    def __init__(self,
        in_channels,                    # Number of input channels.
        cmap_dim,                       # Dimensionality of the mapped label, 0 = unconditional.
        resolution,                     # Resolution of this block (4).
        img_channels,                   # Number of image channels.
        architecture        = 'resnet', # 'orig', 'skip' or 'resnet'.
        mbstd_group_size    = 4,        # Group size of the minibatch stddev layer, None = whole minibatch.
        mbstd_num_channels  = 1,        # Channels of the minibatch stddev layer, 0 = disable it.
        activation          = 'lrelu',  # Activation name from bias_act.activation_funcs.
        conv_clamp          = None,     # Clamp conv outputs to +-conv_clamp, None = no clamping.
        shape               = None,     # Input (height, width) when not resolution x resolution.
        uncond_logit        = False,    # Also an unconditional logit from its own layer: returns (uncond, cond).
    ):
        _check_architecture(architecture, 'DiscriminatorEpilogue')
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.shape = None if shape is None else tuple(shape)
        self.img_channels = img_channels
        self.architecture = architecture

        if architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
                                conv_clamp=conv_clamp)
        height, width = shape_of(self)
        self.fc = FullyConnectedLayer(in_channels * height * width, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)
        self.out_uncond = FullyConnectedLayer(in_channels, 1) if uncond_logit else None

    def forward(self, x, img, cmap, force_fp32=False):
        del force_fp32  # The epilogue always runs in fp32.
        height, width = shape_of(self)
        misc.assert_shape(x, [None, self.in_channels, height, width])
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == 'skip':
            misc.assert_shape(img, [None, self.img_channels, height, width])
            x = x + self.fromrgb(img.to(dtype=torch.float32, memory_format=torch.contiguous_format))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        hidden = self.fc(x.flatten(1))
        x = self.out(hidden)
        if self.cmap_dim > 0:
            # Projection discriminator (Miyato & Koyama 2018): score = <features, mapped label> / sqrt(dim).
            misc.assert_shape(cmap, [None, self.cmap_dim])
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        out_uncond = getattr(self, 'out_uncond', None)  # Absent in heads pickled before transitional conditioning.
        if out_uncond is not None:
            return out_uncond(hidden), x
        return x

#----------------------------------------------------------------------------

@persistence.persistent_class
class Discriminator(torch.nn.Module):
    """image, c -> one logit per sample: blocks bN..b8, then the 4x4 epilogue b4 (label mapped by `mapping`); images
    are img_resolution square unless init_res makes them non-square (img_shape)."""

    init_res = None  # The default for networks pickled before non-square ones existed.
    cond_transition = False  # The default for networks pickled before transitional conditioning.

    def __init__(self,
        c_dim,                          # Label (C) dimensionality, 0 = unconditional.
        img_resolution,                 # Input resolution, a power of two >= 4.
        img_channels,                   # Number of image channels.
        architecture        = 'resnet', # 'orig', 'skip' or 'resnet'.
        channel_base        = 32768,    # Channels at resolution res = min(channel_base // res, channel_max).
        channel_max         = 512,      # Maximum number of channels in any block.
        num_fp16_res        = 0,        # Run the N highest resolutions in fp16.
        conv_clamp          = None,     # Clamp conv outputs to +-conv_clamp, None = no clamping.
        cmap_dim            = None,     # Dimensionality of the mapped label, None = channels at 4x4.
        decoder_res         = None,     # GGDR/GLeaD: feature decoder up to this resolution, None = none.
        glead_kwargs        = None,     # GLeaD heads on the decoder: dict(feature_channels, w_dim), None = none.
        block_kwargs        = {},       # Arguments for DiscriminatorBlock.
        mapping_kwargs      = {},       # Arguments for the label MappingNetwork.
        epilogue_kwargs     = {},       # Arguments for DiscriminatorEpilogue.
        init_res            = None,     # (h0, w0) of the 4x4 head; images are (h0, w0) * img_resolution / 4. None: (4, 4).
        cond_transition     = False,    # Transitional conditioning: an unconditional logit too, and a `transition` buffer.
    ):
        if cond_transition and c_dim == 0:
            raise ValueError('Discriminator: cond_transition needs a label (c_dim > 0)')
        init_res = check_init_res(init_res)
        if not (isinstance(img_resolution, int) and img_resolution >= 4 and img_resolution & (img_resolution - 1) == 0):
            raise ValueError(f'img_resolution must be a power of two >= 4, got {img_resolution!r}')
        _check_architecture(architecture, 'Discriminator')
        super().__init__()
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.init_res = init_res
        self.cond_transition = bool(cond_transition)
        self.block_resolutions = [2 ** i for i in range(self.img_resolution_log2, 2, -1)]
        channels = channels_per_resolution(self.block_resolutions + [4], channel_base, channel_max)
        shape = lambda res: {} if init_res is None else dict(shape=block_shape(res, init_res))  # noqa: E731
        fp16_resolution = fp16_min_resolution(img_resolution, num_fp16_res)
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0

        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(channels[res] if res < img_resolution else 0, channels[res], channels[res // 2],
                                       resolution=res, first_layer_idx=layer_idx, use_fp16=(res >= fp16_resolution),
                                       **shape(res), **block_kwargs, **common)
            setattr(self, f'b{res}', block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          **mapping_kwargs)
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4, **shape(4), **epilogue_kwargs,
                                        uncond_logit=self.cond_transition, **common)
        if self.cond_transition:
            self.register_buffer('transition', torch.zeros([]))  # The weight of the conditional logit's loss.
        self.decoder = self.glead = None
        if decoder_res is not None:
            if not (isinstance(decoder_res, int) and 8 <= decoder_res <= img_resolution):
                raise ValueError(f'Discriminator: decoder_res must be a power of two from 8 to img_resolution '
                                 f'({img_resolution}), got {decoder_res!r}')
            self.decoder = FeatureDecoder(channels, decoder_res, **({} if init_res is None else dict(init_res=init_res)))
        if glead_kwargs is not None:
            if self.decoder is None:
                raise ValueError('Discriminator: glead_kwargs needs the feature decoder (decoder_res)')
            self.glead = GLeaDHeads(channels[decoder_res], img_channels=img_channels, **glead_kwargs)

    @property
    def img_shape(self):
        """(height, width) of the images it takes."""
        return block_shape(self.img_resolution, self.init_res)

    def forward(self, img, c, **block_kwargs):
        """Logits [N, 1]; with a decoder or cond_transition, (logits, heads): heads['features'] is the decoder output
        and, with GLeaD, heads['img'], heads['feature'] and heads['w'] are the predictions of GLeaDHeads; with
        cond_transition, the logits are the unconditional ones and heads['cond_logits'] the label's projection."""
        x = None
        features = {}
        for res in self.block_resolutions:
            x, img = getattr(self, f'b{res}')(x, img, **block_kwargs)
            features[res // 2] = x
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        logits = self.b4(x, img, cmap)
        heads = {}
        if self.cond_transition:
            logits, heads['cond_logits'] = logits
        if self.decoder is None:
            return (logits, heads) if heads else logits
        heads.update(features=self.decoder(features))
        if self.glead is not None:
            heads.update(self.glead(heads['features']))
        return logits, heads

#----------------------------------------------------------------------------
