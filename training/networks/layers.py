"""Building blocks of the StyleGAN2 networks: equalized-lr layers, modulated convolution, mapping, synthesis layers."""

# Parameter and buffer names, constructor arguments and numerics follow stylegan2-ada-pytorch, so
# that official pickles load onto these classes (training/legacy.py) and give the same outputs.

import numpy as np
import torch

from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import bias_act
from torch_utils.ops import conv2d_resample
from torch_utils.ops import fma
from torch_utils.ops import upfirdn2d

#----------------------------------------------------------------------------
# Functions.

@misc.profiled_function
def normalize_2nd_moment(x, dim=1, eps=1e-8):
    """Scale x so that its mean square along `dim` is 1 (the mapping network's input normalisation)."""
    mean_square = x.square().mean(dim=dim, keepdim=True)
    return x * (mean_square + eps).rsqrt()


def _modulation_inputs_for_fp16(weight, styles):
    """Rescale weight and styles so their product cannot overflow fp16; demodulation undoes the scale."""
    fan_in = weight[0].numel()
    weight = weight * (1 / np.sqrt(fan_in) / weight.norm(float('inf'), dim=[1, 2, 3], keepdim=True))
    styles = styles / styles.norm(float('inf'), dim=1, keepdim=True)
    return weight, styles


@misc.profiled_function
def modulated_conv2d(
    x,                          # Input activations [batch, in_channels, height, width].
    weight,                     # Shared weight [out_channels, in_channels, kh, kw].
    styles,                     # Per-sample input-channel scales [batch, in_channels].
    noise           = None,     # Optional noise added to the output (broadcastable to it).
    up              = 1,        # Integer upsampling factor.
    down            = 1,        # Integer downsampling factor.
    padding         = 0,        # Padding of the (upsampled) input.
    resample_filter = None,     # FIR filter from upfirdn2d.setup_filter(), for up/down.
    demodulate      = True,     # Normalise each output channel of the per-sample weight to unit norm?
    flip_weight     = True,     # True = correlation (as torch conv2d), False = true convolution.
    fused_modconv   = True,     # One grouped conv with per-sample weights, instead of scaling activations?
):
    """StyleGAN2's modulated convolution (Karras et al. 2020, Eq. 1-3), fused or as scale-conv-scale."""
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    misc.assert_shape(weight, [out_channels, in_channels, kh, kw])
    misc.assert_shape(x, [batch_size, in_channels, None, None])
    misc.assert_shape(styles, [batch_size, in_channels])

    if x.dtype == torch.float16 and demodulate:
        weight, styles = _modulation_inputs_for_fp16(weight, styles)

    # Per-sample weights [N, O, I, kh, kw] and their demodulation coefficients [N, O].
    sample_weight = None
    demod = None
    if demodulate or fused_modconv:
        sample_weight = weight.unsqueeze(0) * styles.reshape(batch_size, 1, in_channels, 1, 1)
    if demodulate:
        demod = (sample_weight.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()

    if not fused_modconv:
        # Scale the activations instead of the weights: one shared conv for the whole batch.
        x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
        x = conv2d_resample.conv2d_resample(x=x, w=weight.to(x.dtype), f=resample_filter, up=up, down=down,
                                            padding=padding, flip_weight=flip_weight)
        if demodulate and noise is not None:
            return fma.fma(x, demod.to(x.dtype).reshape(batch_size, -1, 1, 1), noise.to(x.dtype))
        if demodulate:
            return x * demod.to(x.dtype).reshape(batch_size, -1, 1, 1)
        if noise is not None:
            return x.add_(noise.to(x.dtype))
        return x

    # Fused: fold the batch into channel groups and run one grouped conv with the per-sample weights.
    if demodulate:
        sample_weight = sample_weight * demod.reshape(batch_size, -1, 1, 1, 1)
    with misc.suppress_tracer_warnings():  # The batch size becomes a constant when tracing.
        batch_size = int(batch_size)
    misc.assert_shape(x, [batch_size, in_channels, None, None])
    x = x.reshape(1, batch_size * in_channels, *x.shape[2:])
    grouped_weight = sample_weight.reshape(batch_size * out_channels, in_channels, kh, kw)
    x = conv2d_resample.conv2d_resample(x=x, w=grouped_weight.to(x.dtype), f=resample_filter, up=up, down=down,
                                        padding=padding, groups=batch_size, flip_weight=flip_weight)
    x = x.reshape(batch_size, out_channels, *x.shape[2:])
    if noise is not None:
        x = x.add_(noise)
    return x

#----------------------------------------------------------------------------
# Resolution rules shared by the generator and the discriminator.

def channels_per_resolution(resolutions, channel_base, channel_max):
    """StyleGAN2's channel rule: min(channel_base / resolution, channel_max) at every resolution."""
    return {res: min(channel_base // res, channel_max) for res in resolutions}


def fp16_min_resolution(img_resolution, num_fp16_res):
    """Lowest resolution that runs in fp16 when the `num_fp16_res` highest ones do (never below 8x8)."""
    return max(2 ** (int(np.log2(img_resolution)) + 1 - num_fp16_res), 8)


def check_init_res(init_res):
    """init_res as a tuple (h0, w0) of whole numbers >= 1, or None for (4, 4): the square networks of StyleGAN2."""
    if init_res is None:
        return None
    if not (isinstance(init_res, (tuple, list)) and len(init_res) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in init_res)):
        raise ValueError(f'init_res must be (height, width) of the first block, two whole numbers >= 1, got {init_res!r}')
    return None if tuple(init_res) == (4, 4) else (int(init_res[0]), int(init_res[1]))


def block_shape(resolution, init_res):
    """(height, width) of the block of nominal `resolution` (4, 8, ...) when the first block is init_res (None: square)."""
    if init_res is None:
        return (resolution, resolution)
    return (init_res[0] * resolution // 4, init_res[1] * resolution // 4)


def image_shape(network):
    """(height, width) of the images of a generator or discriminator: its img_shape, or img_resolution square for
    networks without one (another codebase's classes, run from a pickle's source)."""
    shape = getattr(network, 'img_shape', None)
    return (network.img_resolution, network.img_resolution) if shape is None else tuple(shape)


def shape_of(module):
    """A block's or layer's (height, width): its `shape`, or resolution x resolution for square ones (which include
    modules pickled before non-square networks existed: `shape` is then the class default None)."""
    return tuple(module.shape) if module.shape is not None else (module.resolution, module.resolution)


def shape_kwargs(shape):
    """{'shape': shape} for a module of a non-square network, {} (shape None) for a square one: square networks keep
    the constructor arguments (and pickles) they always had."""
    return {} if shape is None else dict(shape=tuple(shape))


def block_dtype_and_format(use_fp16, channels_last, force_fp32):
    """Compute dtype and memory format of a block: fp16 (and channels_last) only when enabled and not forced off."""
    dtype = torch.float16 if use_fp16 and not force_fp32 else torch.float32
    memory_format = torch.channels_last if channels_last and not force_fp32 else torch.contiguous_format
    return dtype, memory_format

#----------------------------------------------------------------------------
# Equalized-learning-rate layers: weights are stored at unit scale and multiplied by a constant gain
# in forward, so every layer learns at the same rate under Adam.

@persistence.persistent_class
class FullyConnectedLayer(torch.nn.Module):
    """Dense layer with equalized learning rate and a learning-rate multiplier."""

    def __init__(self,
        in_features,                # Number of input features.
        out_features,               # Number of output features.
        bias            = True,     # Add a learned bias before the activation?
        activation      = 'linear', # Activation name from bias_act.activation_funcs.
        lr_multiplier   = 1,        # Learning-rate multiplier of this layer.
        bias_init       = 0,        # Initial value of the bias.
    ):
        super().__init__()
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.full([out_features], np.float32(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        weight = self.weight.to(x.dtype) * self.weight_gain
        bias = None
        if self.bias is not None:
            bias = self.bias.to(x.dtype)
            if self.bias_gain != 1:
                bias = bias * self.bias_gain
        if self.activation == 'linear' and bias is not None:
            return torch.addmm(bias.unsqueeze(0), x, weight.t())
        return bias_act.bias_act(x.matmul(weight.t()), bias, act=self.activation)


@persistence.persistent_class
class Conv2dLayer(torch.nn.Module):
    """Convolution with equalized learning rate, optional FIR up/down-sampling, bias, activation and clamp."""

    def __init__(self,
        in_channels,                    # Number of input channels.
        out_channels,                   # Number of output channels.
        kernel_size,                    # Width and height of the kernel.
        bias            = True,         # Add a learned bias before the activation?
        activation      = 'linear',     # Activation name from bias_act.activation_funcs.
        up              = 1,            # Integer upsampling factor.
        down            = 1,            # Integer downsampling factor.
        resample_filter = [1, 3, 3, 1], # FIR low-pass filter used when resampling.
        conv_clamp      = None,         # Clamp outputs to +-conv_clamp, None = no clamping.
        channels_last   = False,        # Store the weight in channels_last memory format?
        trainable       = True,         # False = weight and bias are buffers (frozen, e.g. Freeze-D).
    ):
        super().__init__()
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = bias_act.activation_funcs[activation].def_gain

        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        bias = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = torch.nn.Parameter(weight)
            self.bias = torch.nn.Parameter(bias) if bias is not None else None
        else:
            self.register_buffer('weight', weight)
            self.register_buffer('bias', bias)

    def forward(self, x, gain=1):
        weight = self.weight * self.weight_gain
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample.conv2d_resample(x=x, w=weight.to(x.dtype), f=self.resample_filter, up=self.up,
                                            down=self.down, padding=self.padding, flip_weight=(self.up == 1))
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act.bias_act(x, bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

#----------------------------------------------------------------------------

@persistence.persistent_class
class MappingNetwork(torch.nn.Module):
    """z (and an embedded label c) -> w, broadcast to num_ws copies, with a tracked mean w for truncation.

    With cond_transition (transitional conditioning, Shahbazi et al. 2022, "Collapse by Conditioning"), the first
    layer sees z alone and the embedded label joins its output through its own layer, scaled by the `transition`
    buffer: 0 maps every label to the same w (an unconditional G), 1 is fully conditional; training moves it.
    """

    cond_transition = False  # The default for networks pickled before transitional conditioning.

    def __init__(self,
        z_dim,                      # Latent (Z) dimensionality, 0 = no latent.
        c_dim,                      # Label (C) dimensionality, 0 = no label.
        w_dim,                      # Intermediate latent (W) dimensionality.
        num_ws,                     # Number of w copies to output, None = output [batch, w_dim].
        num_layers      = 8,        # Number of fully connected layers.
        embed_features  = None,     # Label embedding size, None = w_dim.
        layer_features  = None,     # Hidden layer size, None = w_dim.
        activation      = 'lrelu',  # Activation of the hidden layers.
        lr_multiplier   = 0.01,     # Learning-rate multiplier of every layer.
        w_avg_beta      = 0.995,    # Decay of the tracked mean of w, None = do not track.
        cond_transition = False,    # Label added after the first layer, scaled by the `transition` buffer.
    ):
        if cond_transition and not (z_dim > 0 and c_dim > 0):
            raise ValueError(f'MappingNetwork: cond_transition needs a latent and a label, got z_dim={z_dim}, '
                             f'c_dim={c_dim}')
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        self.cond_transition = bool(cond_transition)

        embed_features = (w_dim if embed_features is None else embed_features) if c_dim > 0 else 0
        layer_features = w_dim if layer_features is None else layer_features
        widths = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        if self.cond_transition:
            # The reference sizes this layer z_dim, which works only where z_dim equals the layer width (512 both
            # by default); it feeds the first layer's output, so it is sized that width here.
            widths[0] = z_dim
            self.embed_proj = FullyConnectedLayer(embed_features, widths[1], activation=activation,
                                                  lr_multiplier=lr_multiplier)
            self.register_buffer('transition', torch.zeros([]))
        for idx in range(num_layers):
            layer = FullyConnectedLayer(widths[idx], widths[idx + 1], activation=activation, lr_multiplier=lr_multiplier)
            setattr(self, f'fc{idx}', layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer('w_avg', torch.zeros([w_dim]))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, skip_w_avg_update=False):
        parts = []
        if self.z_dim > 0:
            misc.assert_shape(z, [None, self.z_dim])
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            misc.assert_shape(c, [None, self.c_dim])
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        first = 0
        if self.cond_transition:
            x = self.fc0(parts[0]) + self.transition * self.embed_proj(parts[1])
            first = 1
        else:
            x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for idx in range(first, self.num_layers):
            x = getattr(self, f'fc{idx}')(x)

        if self.w_avg_beta is not None and self.training and not skip_w_avg_update:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            x = self._truncate(x, truncation_psi, truncation_cutoff)
        return x

    def _truncate(self, x, psi, cutoff):
        """Pull w towards the tracked mean: w_avg + psi * (w - w_avg), for the first `cutoff` ws only if given."""
        if self.w_avg_beta is None:
            raise ValueError('MappingNetwork: truncation needs a tracked w_avg, but w_avg_beta is None')
        if self.num_ws is None or cutoff is None:
            return self.w_avg.lerp(x, psi)
        x = x.clone()
        x[:, :cutoff] = self.w_avg.lerp(x[:, :cutoff], psi)
        return x

#----------------------------------------------------------------------------
# Style-modulated layers of the synthesis network.

@persistence.persistent_class
class SynthesisLayer(torch.nn.Module):
    """Modulated, demodulated conv (optionally 2x upsampling) + per-pixel noise + bias + activation + clamp."""

    shape = None  # (height, width) when not square; the default for layers pickled before non-square networks.

    def __init__(self,
        in_channels,                    # Number of input channels.
        out_channels,                   # Number of output channels.
        w_dim,                          # Intermediate latent (W) dimensionality.
        resolution,                     # Output resolution of this layer.
        kernel_size     = 3,            # Width and height of the kernel.
        up              = 1,            # Integer upsampling factor.
        use_noise       = True,         # Add per-pixel noise with a learned strength?
        activation      = 'lrelu',      # Activation name from bias_act.activation_funcs.
        resample_filter = [1, 3, 3, 1], # FIR low-pass filter used when upsampling.
        conv_clamp      = None,         # Clamp outputs to +-conv_clamp, None = no clamping.
        channels_last   = False,        # Store the weight in channels_last memory format?
        shape           = None,         # Output (height, width) when not resolution x resolution.
    ):
        super().__init__()
        self.resolution = resolution
        self.shape = None if shape is None else tuple(shape)
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = bias_act.activation_funcs[activation].def_gain

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        self.weight = torch.nn.Parameter(weight)
        if use_noise:
            self.register_buffer('noise_const', torch.randn(list(shape_of(self))))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, w, noise_mode='random', fused_modconv=True, gain=1):
        if noise_mode not in ('random', 'const', 'none'):
            raise ValueError(f'noise_mode must be "random", "const" or "none", got {noise_mode!r}')
        height, width = shape_of(self)
        misc.assert_shape(x, [None, self.weight.shape[1], height // self.up, width // self.up])
        styles = self.affine(w)

        noise = None
        if self.use_noise and noise_mode == 'random':
            noise = torch.randn([x.shape[0], 1, height, width], device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == 'const':
            noise = self.noise_const * self.noise_strength

        x = modulated_conv2d(x=x, weight=self.weight, styles=styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=(self.up == 1),
                             fused_modconv=fused_modconv)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act.bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp)


@persistence.persistent_class
class ToRGBLayer(torch.nn.Module):
    """Modulated conv without demodulation (paper Eq. 5: a 1x1 linear map of modulated features) + bias."""

    def __init__(self,
        in_channels,                # Number of input channels.
        out_channels,               # Number of image channels.
        w_dim,                      # Intermediate latent (W) dimensionality.
        kernel_size     = 1,        # Width and height of the kernel.
        conv_clamp      = None,     # Clamp outputs to +-conv_clamp, None = no clamping.
        channels_last   = False,    # Store the weight in channels_last memory format?
    ):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        self.weight = torch.nn.Parameter(weight)
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x, w, fused_modconv=True):
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x=x, weight=self.weight, styles=styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act.bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)

#----------------------------------------------------------------------------
