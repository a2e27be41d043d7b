"""The --reg-type step of config resolution: GGDR or GLeaD as D's decoder heads plus loss terms, validated."""

# resolve_config (config.py) calls resolve_regularizer after the networks are resolved. It adds the
# decoder (and GLeaD heads) to D_kwargs and the loss terms to loss_kwargs.extra_terms, so
# training_options.json records everything a resumed or inspected run needs. Defaults are the public
# codes' (weights 10 / 10 / 3, GLeaD's real term also in the R1 phase); the resolution default is the
# GGDR README's advice, a quarter of the image size, capped at their default 64.

import math

import dnnlib
from training.networks.layers import channels_per_resolution

FLAG_OWNER = dict(ggdr_res='ggdr', glead_res_d='glead', glead_res_g='glead', glead_fake='glead')  # Flag -> its --reg-type.


def default_decoder_res(resolution):
    """A quarter of the image size, from 8 up to 64 (GGDR's advice: 8 for CIFAR-10, 64 for 256x256)."""
    return max(8, min(64, resolution // 4))


def _check_res(value, flag, resolution, error):
    """A feature resolution: a power of two from 8 to half the image size (the last G block feeds nothing)."""
    highest = resolution // 2
    if not (isinstance(value, int) and value >= 8 and value & (value - 1) == 0 and value <= highest):
        accepted = ', '.join(str(2 ** i) for i in range(3, int(math.log2(highest)) + 1)) if highest >= 8 else 'none'
        raise error(f'--{flag}={value}: must be a power of two from 8 to half the image resolution ({resolution}); '
                    f'accepted here: {accepted}')
    return value


def _channels(kwargs, res):
    synthesis = kwargs.get('synthesis_kwargs', kwargs)
    return channels_per_resolution([res], synthesis['channel_base'], synthesis['channel_max'])[res]


def resolve_regularizer(c, opts, resolution, error):
    """Add opts.reg_type's decoder, heads and loss terms to c (D_kwargs, loss_kwargs); `error` is ConfigError."""
    reg_type = opts.reg_type  # The option table checked it is one of none, ggdr, glead.
    wrong = [name for name, owner in FLAG_OWNER.items() if name in opts.given and owner != reg_type]
    if wrong:
        raise error(f'--{wrong[0].replace("_", "-")} applies to --reg-type={FLAG_OWNER[wrong[0]]}, not --reg-type={reg_type}')
    c.reg_type = reg_type
    if reg_type == 'ggdr':
        _resolve_ggdr(c, opts, resolution, error)
    elif reg_type == 'glead':
        _resolve_glead(c, opts, resolution, error)


def _check_same_channels(c, res, error, flag):
    g, d = _channels(c.G_kwargs, res), _channels(c.D_kwargs, res)
    if g != d:
        raise error(f'--{flag}={res}: G has {g} channels there but D has {d}; D\'s decoder predicts G\'s features, '
                    f'so both need the same --cbase/--cmax')


def _resolve_ggdr(c, opts, resolution, error):
    res = _check_res(opts.ggdr_res if opts.ggdr_res is not None else default_decoder_res(resolution), 'ggdr-res',
                     resolution, error)
    _check_same_channels(c, res, error, 'ggdr-res')
    c.D_kwargs.decoder_res = res
    c.loss_kwargs.extra_terms = [dnnlib.EasyDict(class_name='training.regularizers.GGDRLoss', resolution=res,
                                                 weight=float(opts.ggdr_weight))]


def _resolve_glead(c, opts, resolution, error):
    res_d = _check_res(opts.glead_res_d if opts.glead_res_d is not None else default_decoder_res(resolution),
                       'glead-res-d', resolution, error)
    res_g = _check_res(opts.glead_res_g if opts.glead_res_g is not None else default_decoder_res(resolution),
                       'glead-res-g', resolution, error)
    fake = opts.glead_fake
    if fake == 'feature':
        _check_same_channels(c, res_g, error, 'glead-res-g')
    c.D_kwargs.decoder_res = res_d
    c.D_kwargs.glead_kwargs = dnnlib.EasyDict(feature_channels=_channels(c.G_kwargs, res_g), w_dim=c.G_kwargs.w_dim)
    common = dict(class_name='training.regularizers.GLeaDLoss', feature_res=res_g, detector_dir=opts.detector_dir)
    c.loss_kwargs.extra_terms = [
        dnnlib.EasyDict(common, branch='real', weight=10.0, in_r1_phase=bool(opts.glead_real_in_r1)),
        dnnlib.EasyDict(common, branch=fake, weight=3.0 if fake == 'image' else 10.0),
    ]
