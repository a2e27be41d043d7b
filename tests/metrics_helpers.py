"""Stand-ins for the metric tests: tiny TorchScript detectors under the published file names, a tiny generator, a tiny dataset."""

import json
import os
import warnings

import numpy as np
import PIL.Image
import torch

import dnnlib
from metrics import detectors
from torch_utils import persistence

RESOLUTION = 16
NUM_FEATURES = 8
NUM_CLASSES = 5


class StandInDetector(torch.nn.Module):
    """Same calling convention as the public Inception/VGG16 files, a few fixed random weights inside."""

    def __init__(self,
        seed         = 0,               # Seed for the fixed projection weights.
        num_features = NUM_FEATURES,    # Length of the feature vector (return_features / return_lpips).
        num_classes  = NUM_CLASSES,     # Number of class probabilities (no_output_bias).
    ):
        super().__init__()
        rng = torch.Generator().manual_seed(seed)
        self.register_buffer('to_features', torch.randn([3 * 4 * 4, num_features], generator=rng) / 8)
        self.register_buffer('to_logits', torch.randn([num_features, num_classes], generator=rng))
        self.register_buffer('output_bias', torch.randn([num_classes], generator=rng))

    def forward(self, img: torch.Tensor, return_features: bool = False, no_output_bias: bool = False,
                resize_images: bool = True, return_lpips: bool = False) -> torch.Tensor:
        x = img.to(torch.float32) / 255
        x = torch.nn.functional.adaptive_avg_pool2d(x, [4, 4]).flatten(1)
        features = x @ self.to_features
        if return_features:
            return features
        if return_lpips:
            return features / features.square().sum(dim=1, keepdim=True).sqrt().clamp(min=1e-8)
        logits = features @ self.to_logits
        if no_output_bias:
            return torch.softmax(logits, dim=1)
        return logits + self.output_bias


def write_detector(folder, file_name, seed=0, module=None):
    """Save a scripted stand-in detector as `folder/file_name`; returns the path."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, file_name)
    with warnings.catch_warnings():  # torch 2.x deprecates scripting, but the public detectors are TorchScript.
        warnings.simplefilter('ignore', DeprecationWarning)
        scripted = torch.jit.script(module if module is not None else StandInDetector(seed=seed))
    scripted.save(path)
    return path


def write_detector_dir(folder, seed=0):
    """A detector folder holding both published file names."""
    write_detector(folder, detectors.INCEPTION.file_name, seed=seed)
    write_detector(folder, detectors.VGG16.file_name, seed=seed + 1)
    return str(folder)

#----------------------------------------------------------------------------


@persistence.persistent_class
class StandInMapping(torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, num_ws):
        super().__init__()
        self.num_ws = num_ws
        self.fc = torch.nn.Linear(z_dim + c_dim, w_dim)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None):
        w = self.fc(torch.cat([z, c], dim=1))
        return w.unsqueeze(1).repeat([1, self.num_ws, 1])


@persistence.persistent_class
class StandInSynthesis(torch.nn.Module):
    """Image = tanh(linear(w) + noise buffer), so images are smooth in w."""

    def __init__(self, w_dim, img_resolution, img_channels):
        super().__init__()
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.fc = torch.nn.Linear(w_dim, img_channels * img_resolution * img_resolution)
        self.register_buffer('noise_const', torch.zeros([img_resolution, img_resolution]))

    def forward(self, ws, noise_mode='const', force_fp32=False):
        img = self.fc(ws[:, 0]).reshape([-1, self.img_channels, self.img_resolution, self.img_resolution])
        return torch.tanh(img + 0.1 * self.noise_const)


@persistence.persistent_class  # Network pickles may hold persistent classes only.
class StandInGenerator(torch.nn.Module):
    """The parts of training.networks.Generator that metrics use."""

    def __init__(self,
        z_dim          = 8,             # Latent size.
        c_dim          = 0,             # Label size.
        w_dim          = 8,             # Intermediate latent size.
        img_resolution = RESOLUTION,    # Output resolution.
        img_channels   = 3,             # Output channels.
        seed           = 0,             # Seed for the weights.
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels, self.num_ws = img_resolution, img_channels, 2
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.mapping = StandInMapping(z_dim, c_dim, w_dim, self.num_ws)
            self.synthesis = StandInSynthesis(w_dim, img_resolution, img_channels)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, noise_mode='const', force_fp32=False):
        return self.synthesis(self.mapping(z, c), noise_mode=noise_mode, force_fp32=force_fp32)

#----------------------------------------------------------------------------


def write_image_folder(folder, num_images=24, seed=0, resolution=RESOLUTION, num_classes=0):
    """PNG images (random smooth colours) and, with classes, a dataset.json; returns dataset_kwargs for it."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.RandomState(seed)
    labels = []
    for i in range(num_images):
        base = rng.randint(0, 256, size=[1, 1, 3])
        image = np.clip(base + rng.randint(-20, 21, size=[resolution, resolution, 3]), 0, 255).astype(np.uint8)
        name = f'img{i:04d}.png'
        PIL.Image.fromarray(image).save(os.path.join(folder, name))
        labels.append([name, int(i % num_classes) if num_classes else 0])
    if num_classes:
        with open(os.path.join(folder, 'dataset.json'), 'w') as f:
            json.dump({'labels': labels}, f)
    return dataset_kwargs_for(folder, use_labels=num_classes > 0)


def dataset_kwargs_for(path, use_labels=False):
    return dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=str(path), use_labels=use_labels,
                           max_size=None, xflip=False, resolution=RESOLUTION)


def real_tiny_generator(c_dim=0, seed=0):
    """training.networks.Generator at 16 px with a handful of channels."""
    from training import networks
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = networks.Generator(z_dim=16, c_dim=c_dim, w_dim=16, img_resolution=RESOLUTION, img_channels=3,
                               mapping_kwargs=dnnlib.EasyDict(num_layers=2),
                               synthesis_kwargs=dnnlib.EasyDict(channel_base=256, channel_max=16, num_fp16_res=0,
                                                                conv_clamp=None))
    return G.eval().requires_grad_(False)

#----------------------------------------------------------------------------


def lpips_weight_states(seed=0):
    """Random stand-ins for the two public LPIPS files: (AlexNet state dict, LPIPS v0.1 linear state dict)."""
    from metrics import lpips
    rng = torch.Generator().manual_seed(seed)
    alexnet_state = {key: torch.randn(shape, generator=rng) * 0.05 for key, shape in lpips.ALEXNET_SHAPES.items()}
    alexnet_state['classifier.6.bias'] = torch.zeros([1000])  # The public file also holds the classifier; unused.
    linear_state = {key: torch.rand(shape, generator=rng) for key, shape in lpips.LINEAR_SHAPES.items()}
    return alexnet_state, linear_state


def write_lpips_weight_dir(folder, seed=0):
    """A detector folder holding stand-ins under both public LPIPS file names; returns (folder, the two states)."""
    from metrics import lpips
    os.makedirs(folder, exist_ok=True)
    alexnet_state, linear_state = lpips_weight_states(seed)
    torch.save(alexnet_state, os.path.join(folder, lpips.ALEXNET.file_name))
    torch.save(linear_state, os.path.join(folder, lpips.LPIPS_ALEX.file_name))
    return str(folder), alexnet_state, linear_state
