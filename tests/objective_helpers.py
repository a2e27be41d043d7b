"""Tiny stand-in generator and discriminators for the loss, augmentation and ADA tests (no training.networks)."""

import torch

from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix

#----------------------------------------------------------------------------

class TinyMapping(torch.nn.Module):
    """z -> ws [N, num_ws, w_dim] through one linear layer; counts the calls that update the w average."""

    def __init__(self, z_dim, w_dim, num_ws):
        super().__init__()
        self.num_ws = num_ws
        self.fc = torch.nn.Linear(z_dim, w_dim)
        self.register_buffer('w_avg', torch.zeros([w_dim]))
        self.ema_updates = 0

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        w = self.fc(z)
        if update_emas:
            self.ema_updates += 1
            self.w_avg.copy_(w.detach().mean(dim=0).lerp(self.w_avg, 0.995))
        return w.unsqueeze(1).repeat([1, self.num_ws, 1])


class TinySynthesis(torch.nn.Module):
    """ws -> image, linear in ws: img = sum_l ws[:, l] @ A[l] + bias (so path lengths can be worked out by hand)."""

    def __init__(self, w_dim, num_ws, img_channels, img_resolution):
        super().__init__()
        self.img_shape = [img_channels, img_resolution, img_resolution]
        self.A = torch.nn.Parameter(torch.randn([num_ws, w_dim, img_channels * img_resolution ** 2]) * 0.3)
        self.bias = torch.nn.Parameter(torch.zeros(self.img_shape))

    def forward(self, ws, update_emas=False):
        img = torch.einsum('nlw,lwp->np', ws, self.A)
        return img.reshape([ws.shape[0]] + self.img_shape) + self.bias


class TinyG(torch.nn.Module):
    """The generator interface the loss needs: z_dim, c_dim, num_ws, mapping, synthesis."""

    def __init__(self, z_dim=4, w_dim=4, num_ws=3, img_channels=3, img_resolution=8):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = 0
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.img_channels = img_channels
        self.img_resolution = img_resolution
        self.mapping = TinyMapping(z_dim, w_dim, num_ws)
        self.synthesis = TinySynthesis(w_dim, num_ws, img_channels, img_resolution)

    def forward(self, z, c):
        return self.synthesis(self.mapping(z, c))


class TinyD(torch.nn.Module):
    """conv (through conv2d_gradfix) -> leaky ReLU -> mean -> linear: logits [N, 1]."""

    def __init__(self, img_channels=3, hidden=4):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn([hidden, img_channels, 3, 3]) * 0.3)
        self.fc = torch.nn.Linear(hidden, 1)

    def forward(self, img, c):
        x = conv2d_gradfix.conv2d(img, self.weight, padding=1)
        x = torch.nn.functional.leaky_relu(x, 0.2).mean(dim=[2, 3])
        return self.fc(x)


class QuadraticD(torch.nn.Module):
    """logit = 1/2 * sum_hw y^2 with y = 1x1 conv(img, w); so dlogit/dimg = y * w and R1 has a closed form."""

    def __init__(self, img_channels=3):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn([1, img_channels, 1, 1]))

    def forward(self, img, c):
        y = conv2d_gradfix.conv2d(img, self.weight)
        return 0.5 * y.square().sum(dim=[1, 2, 3]).unsqueeze(1)


class ConstantD(torch.nn.Module):
    """Ignores the image: logits = a learned constant."""

    def __init__(self):
        super().__init__()
        self.value = torch.nn.Parameter(torch.tensor(0.3))

    def forward(self, img, c):
        return self.value.expand([img.shape[0], 1])


class NaND(TinyD):
    """A discriminator that has diverged: every logit is NaN."""

    def forward(self, img, c):
        return super().forward(img, c) * float('nan')


class MinusInfD(TinyD):
    """Logits of -inf: the generator's loss softplus(-logits) is infinite (not NaN)."""

    def forward(self, img, c):
        return super().forward(img, c) * 0 - float('inf')


class TwoHeadD(TinyD):
    """Returns (logits, features): a discriminator with an extra head, as GGDR/GLeaD-style methods add."""

    def forward(self, img, c):
        features = conv2d_gradfix.conv2d(img, self.weight, padding=1)
        return super().forward(img, c), features

#----------------------------------------------------------------------------

def batch(G, batch_size=4, seed=0):
    """(real_img, real_c, gen_z, gen_c) for G's image shape, drawn from `seed`."""
    gen = torch.Generator().manual_seed(seed)
    real_img = torch.randn([batch_size, G.img_channels, G.img_resolution, G.img_resolution], generator=gen)
    gen_z = torch.randn([batch_size, G.z_dim], generator=gen)
    c = torch.zeros([batch_size, G.c_dim])
    return real_img, c, gen_z, c


def collect(fn, regex='Loss/.*'):
    """Run fn() and return a training_stats Collector holding what it reported."""
    collector = training_stats.Collector(regex=regex, keep_previous=False)
    fn()
    collector.update()
    return collector

#----------------------------------------------------------------------------
