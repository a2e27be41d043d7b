"""Record FID and KID as stylegan2-ada-pytorch's metric code computes them, so tests can hold ours to them.

    python tests/reference/record_metrics.py --reference=/path/to/stylegan2-ada-pytorch --commit=SHA \
        --detector=/path/to/inception-2015-12-05.pt

--detector is the stand-in Inception file that tests/metrics_helpers.py writes (write_detector, seed 0: a TorchScript
module with the public calling convention and fixed random weights); the sha256 of its weights is recorded (the
file's own bytes name the folder it was scripted in), and the test writes it again and checks that before comparing. Two fixed sets of 24 pictures (IMAGE_SETS below) are the reals (a PNG
folder read by the reference's ImageFolderDataset) and the fakes (served by ReplayGenerator through the reference's
generator path). Writes metrics_recorded.json beside this file. Nothing of the reference is committed or read at
test time: only these numbers.
"""

import hashlib
import os
import sys
import tempfile
import warnings

import numpy as np
import PIL.Image
import torch

sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # After the reference's.
from tests.reference import recording_main  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'metrics_recorded.json')
NUM_IMAGES = 24
RESOLUTION = 16
KID_SUBSETS = 2  # Each subset holds every image (max_subset_size = NUM_IMAGES), so the order of the draws is moot.

#----------------------------------------------------------------------------
# Shared by the recording and our side.

def image_sets():
    """(reals, fakes) as uint8 [24, 3, 16, 16]: smooth colour fields, the fakes darker and noisier than the reals."""
    rng = np.random.RandomState(5)
    def pictures(offset, noise):
        base = rng.randint(40, 216, size=[NUM_IMAGES, 3, 1, 1]) + offset
        return np.clip(base + rng.randint(-noise, noise + 1, size=[NUM_IMAGES, 3, RESOLUTION, RESOLUTION]), 0, 255)
    return pictures(0, 20).astype(np.uint8), pictures(-30, 45).astype(np.uint8)


def write_png_folder(folder, images):
    os.makedirs(folder, exist_ok=True)
    for i, image in enumerate(images):
        PIL.Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0)), mode='RGB').save(
            os.path.join(folder, f'img{i:04d}.png'))
    return folder


class ReplayGenerator(torch.nn.Module):
    """Hands out fixed pictures in order, scaled as the training loop scales reals (uint8 / 127.5 - 1): what a
    generator trained to reproduce them exactly would output."""

    def __init__(self, images):
        super().__init__()
        self.register_buffer('images', torch.as_tensor(images).to(torch.float32) / 127.5 - 1)
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = 4, 0, 4, 1
        self.img_channels, self.img_resolution = self.images.shape[1], self.images.shape[-1]
        self.served = 0

    def forward(self, z, c, **_kwargs):
        index = torch.arange(self.served, self.served + z.shape[0]) % len(self.images)
        self.served += z.shape[0]
        return self.images[index]


def weights_sha256(path):
    """sha256 of a TorchScript detector's tensors, by sorted name: the same wherever the file was written."""
    digest = hashlib.sha256()
    with warnings.catch_warnings():  # torch 2.x deprecates TorchScript; the public detector files are TorchScript.
        warnings.simplefilter('ignore', DeprecationWarning)
        module = torch.jit.load(path)
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()

#----------------------------------------------------------------------------

def record(reference_dir, detector_path):
    sys.path.insert(0, os.path.abspath(reference_dir))
    from metrics import frechet_inception_distance, kernel_inception_distance, metric_utils  # pylint: disable=import-outside-toplevel
    url = 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt'
    device = torch.device('cpu')
    metric_utils._feature_detector_cache[(url, device)] = torch.jit.load(detector_path).eval()  # pylint: disable=protected-access
    torch.Tensor.pin_memory = lambda self, *args, **kwargs: self  # Its generator path pins labels; no CUDA here.
    reals, fakes = image_sets()
    with tempfile.TemporaryDirectory() as tmp:
        dataset_kwargs = dict(class_name='training.dataset.ImageFolderDataset', path=write_png_folder(tmp, reals),
                              use_labels=False, max_size=None, xflip=False)

        def options():
            return metric_utils.MetricOptions(G=ReplayGenerator(fakes), dataset_kwargs=dataset_kwargs, device=device,
                                              cache=False)
        fid = frechet_inception_distance.compute_fid(options(), max_real=None, num_gen=NUM_IMAGES)
        kid = kernel_inception_distance.compute_kid(options(), max_real=None, num_gen=NUM_IMAGES,
                                                    num_subsets=KID_SUBSETS, max_subset_size=NUM_IMAGES)
    return dict(source='NVlabs/stylegan2-ada-pytorch metrics/', torch=torch.__version__,
                detector_weights_sha256=weights_sha256(detector_path), fid=float(fid), kid=float(kid))


def main():
    detector = next(arg.split('=', 1)[1] for arg in sys.argv[1:] if arg.startswith('--detector='))
    sys.argv = [arg for arg in sys.argv if not arg.startswith('--detector=')]
    recording_main(__doc__.splitlines()[0], lambda reference_dir: record(reference_dir, detector), OUT, indent=1)


if __name__ == '__main__':
    main()
