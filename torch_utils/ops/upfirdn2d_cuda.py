"""Autograd wiring of the upfirdn2d kernel, differentiable to any order.

upfirdn2d is linear in x, and its adjoint is again an upfirdn2d: up and down swap, the filter is
flipped, and the padding is mirrored. The backward pass therefore calls the same autograd Function,
which makes gradients of every order run on the kernel. The kernel's weights (the filter flipped,
scaled and on the image's device) are prepared once per filter tensor, not on every call.
"""

import collections
import weakref

import torch

#----------------------------------------------------------------------------

# What the Function needs besides tensors. `plugin` is any object with the kernel's signature:
# plugin.upfirdn2d(x, w, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1) -> tensor, where
# w is a 2-D float32 filter applied as a correlation (tests pass a stand-in).
UpFirDn2dConfig = collections.namedtuple('UpFirDn2dConfig', [
    'plugin',       # The built extension (or a stand-in with the same signature).
    'up',           # (x, y) upsampling factors.
    'down',         # (x, y) downsampling factors.
    'padding',      # (x0, x1, y0, y1) padding of the upsampled image; negative crops.
    'flip_filter',  # False: true convolution (the filter is flipped for the correlation).
    'gain',         # Overall scale of the response.
])


_IDENTITY_FILTER = torch.ones([1, 1])  # f=None; one tensor, so its prepared weights are cached too.


def apply(config, x, f):
    """upfirdn2d of x with filter f (1-D separable, 2-D, or None) through the kernel."""
    return _UpFirDn2d.apply(x, _IDENTITY_FILTER if f is None else f, config)

#----------------------------------------------------------------------------

_prepared = dict()  # (id(f), flip_filter, gain, device) -> (weakref to f, f's version, weights).


def prepared_weights(f, flip_filter, gain, device):
    """The kernel's float32 weights on `device` for filter f: a 2-D one as ([h, w], None), a separable
    one as ([1, taps] carrying the gain, [taps, 1]); flipped unless flip_filter (the kernel correlates).

    Prepared on the first call for a filter tensor, flip, gain and device, then reused while the
    tensor lives and is not modified in place (its version counter is unchanged). Inference tensors
    have no version counter; theirs are prepared on every call.
    """
    if f.is_inference():
        return _prepare_weights(f, flip_filter, gain, device)
    key = (id(f), bool(flip_filter), float(gain), torch.device(device))
    entry = _prepared.get(key)
    if entry is not None and entry[0]() is f and entry[1] == f._version:
        return entry[2]
    weights = _prepare_weights(f, flip_filter, gain, device)
    ref = weakref.ref(f, lambda dead: _forget(key, dead))
    _prepared[key] = (ref, f._version, weights)
    return weights


def _forget(key, dead_ref):
    entry = _prepared.get(key)
    if entry is not None and entry[0] is dead_ref:
        del _prepared[key]


def _prepare_weights(f, flip_filter, gain, device):
    with torch.no_grad():
        w = f.detach().to(device=device, dtype=torch.float32)
        if not flip_filter:
            w = w.flip(list(range(w.ndim)))
        if w.ndim == 2:
            return (w * gain).contiguous(), None
        return (w * gain).reshape(1, -1).contiguous(), w.reshape(-1, 1).contiguous()


def _run(config, x, f):
    """One kernel call for a 2-D filter, one per axis for a separable one."""
    upx, upy = config.up
    downx, downy = config.down
    px0, px1, py0, py1 = config.padding
    w, w_column = prepared_weights(f, config.flip_filter, config.gain, x.device)
    if w_column is None:
        return config.plugin.upfirdn2d(x, w, upx, upy, downx, downy, px0, px1, py0, py1)
    x = config.plugin.upfirdn2d(x, w, upx, 1, downx, 1, px0, px1, 0, 0)
    return config.plugin.upfirdn2d(x, w_column, 1, upy, 1, downy, 0, 0, py0, py1)


def adjoint_config(config, f, in_size, out_size):
    """The upfirdn2d that maps output gradients [.., out_h, out_w] to input gradients [.., in_h, in_w]."""
    taps_w, taps_h = (f.shape[-1], f.shape[0]) if f.ndim == 2 else (f.shape[0], f.shape[0])
    (upx, upy), (downx, downy) = config.up, config.down
    px0, _, py0, _ = config.padding
    in_h, in_w = in_size
    out_h, out_w = out_size
    padding = (
        taps_w - 1 - px0, in_w * upx - out_w * downx + px0,
        taps_h - 1 - py0, in_h * upy - out_h * downy + py0,
    )
    return config._replace(up=(downx, downy), down=(upx, upy), padding=padding, flip_filter=not config.flip_filter)


class _UpFirDn2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, f, config):  # pylint: disable=arguments-differ
        y = _run(config, x, f)
        ctx.save_for_backward(f)
        ctx.config = config
        ctx.sizes = (tuple(x.shape[2:]), tuple(y.shape[2:]))
        return y

    @staticmethod
    def backward(ctx, dy):  # pylint: disable=arguments-differ
        f, = ctx.saved_tensors
        dx = None
        if ctx.needs_input_grad[0]:
            dx = _UpFirDn2d.apply(dy, f, adjoint_config(ctx.config, f, *ctx.sizes))
        return dx, None, None  # The filter is a constant (a buffer), as in StyleGAN2.

#----------------------------------------------------------------------------
