"""Shared helpers for the custom-op tests: seeded tensors and a loop-by-loop upfirdn2d written from its definition."""

import numpy as np
import torch

#----------------------------------------------------------------------------

def randn(*shape, seed=0, dtype=torch.float64, requires_grad=False, device='cpu'):
    """A reproducible normal tensor (float64 by default, for gradcheck)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype=dtype, device=device)
    return x.requires_grad_(requires_grad)


def naive_upfirdn2d(x, f, up=(1, 1), down=(1, 1), padding=(0, 0, 0, 0), flip_filter=False, gain=1):
    """upfirdn2d straight from its definition, with Python loops over output pixels.

    x: [N, C, H, W] tensor; f: 1-D (separable) or 2-D taps; up/down: (x, y); padding: (x0, x1, y0, y1).
    Zero insertion, zero padding (negative crops), true convolution with f (correlation when
    flip_filter), then every down-th pixel.
    """
    x = x.detach().cpu().numpy().astype(np.float64)
    f = np.asarray(f.detach().cpu() if isinstance(f, torch.Tensor) else f, dtype=np.float64)
    if f.ndim == 1:
        f = np.outer(f, f)  # Separable taps act along x, then y.
    upx, upy = up
    downx, downy = down
    px0, px1, py0, py1 = padding
    n, c, h, w = x.shape

    big = np.zeros([n, c, h * upy, w * upx])
    big[:, :, ::upy, ::upx] = x
    padded = np.zeros([n, c, big.shape[2] + max(py0, 0) + max(py1, 0), big.shape[3] + max(px0, 0) + max(px1, 0)])
    padded[:, :, max(py0, 0):max(py0, 0) + big.shape[2], max(px0, 0):max(px0, 0) + big.shape[3]] = big
    padded = padded[:, :, max(-py0, 0):padded.shape[2] - max(-py1, 0), max(-px0, 0):padded.shape[3] - max(-px1, 0)]

    taps = f if flip_filter else f[::-1, ::-1]
    fh, fw = taps.shape
    out_h = (padded.shape[2] - fh) // downy + 1
    out_w = (padded.shape[3] - fw) // downx + 1
    out = np.zeros([n, c, out_h, out_w])
    for oy in range(out_h):
        for ox in range(out_w):
            window = padded[:, :, oy * downy:oy * downy + fh, ox * downx:ox * downx + fw]
            out[:, :, oy, ox] = (window * taps).sum(axis=(2, 3))
    return torch.from_numpy(out * gain)

#----------------------------------------------------------------------------

#----------------------------------------------------------------------------
# Stand-ins for the compiled kernels: same call signature, computed with the references. They let
# the CPU tests check the CUDA path's autograd wiring (adjoints, orders of derivatives).

class ReferenceUpFirDn2dPlugin:
    """Does what upfirdn2d.cu does (a correlation with float32 taps w), and counts its calls."""

    def __init__(self):
        self.calls = 0

    def upfirdn2d(self, x, w, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1):
        from torch_utils.ops import upfirdn2d  # pylint: disable=import-outside-toplevel
        assert w.ndim == 2 and w.dtype == torch.float32
        self.calls += 1
        with torch.no_grad():
            return upfirdn2d.upfirdn2d_ref(x, w, up=[up_x, up_y], down=[down_x, down_y],
                                           padding=[pad_x0, pad_x1, pad_y0, pad_y1], flip_filter=True)


class ReferenceBiasActPlugin:
    """Does what bias_act.cu does (order 0, 1 or 2 of clamp(act(x + b) * gain)), and records the orders asked for."""

    def __init__(self):
        self.orders = []

    def bias_act(self, x, b, dy, dim, act, order, alpha, gain, clamp):
        from torch_utils.ops import bias_act  # pylint: disable=import-outside-toplevel
        name = {spec.cuda_idx: key for key, spec in bias_act.activation_funcs.items()}[act]
        self.orders.append(order)
        with torch.enable_grad():
            z = x.detach() if b.numel() == 0 else x.detach() + b.detach().reshape([-1 if i == dim else 1 for i in range(x.ndim)])
            z.requires_grad_(True)
            d = bias_act.bias_act_ref(z, act=name, alpha=alpha, gain=gain, clamp=(clamp if clamp >= 0 else None))
            for _ in range(order):
                d, = torch.autograd.grad(d.sum(), [z], create_graph=True, allow_unused=True)
                d = torch.zeros_like(z) if d is None else d
        d = d.detach()
        return d if order == 0 else dy.detach() * d
