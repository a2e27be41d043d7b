"""LPIPS v0.1 on AlexNet features (Zhang et al. 2018): a differentiable perceptual distance for images in [-1, 1]."""

# Two public weight files are needed, found like the metric detectors (metrics/detectors.py): in the folder
# given as --detector-dir or $SQUEEZEGAN_DETECTOR_DIR, else downloaded once into the dnnlib cache.
#   alexnet-owt-7be5be79.pth  torchvision's ImageNet AlexNet; only its `features.*` tensors are used.
#   alex.pth                  the LPIPS v0.1 per-layer weights, keys 'lin{i}.model.1.weight', shape [1, C, 1, 1].
# Both are read with torch.load(weights_only=True): they may hold tensors only, nothing from them is executed.

import torch

import dnnlib
from metrics import detectors
from torch_utils import misc

ALEXNET = dnnlib.EasyDict(file_name='alexnet-owt-7be5be79.pth',
                          url='https://download.pytorch.org/models/alexnet-owt-7be5be79.pth')
LPIPS_ALEX = dnnlib.EasyDict(file_name='alex.pth',
                             url='https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/'
                                 'lpips/weights/v0.1/alex.pth')

# AlexNet's convolutions under their torchvision indices: (index, in channels, out channels, kernel, stride, padding).
# A max pool (kernel 3, stride 2) follows the ReLUs of convs 0 and 3; LPIPS taps the five ReLU outputs.
_ALEXNET_CONVS = ((0, 3, 64, 11, 4, 2), (3, 64, 192, 5, 1, 2), (6, 192, 384, 3, 1, 1),
                  (8, 384, 256, 3, 1, 1), (10, 256, 256, 3, 1, 1))
_POOLED_AFTER = (0, 3)
TAP_CHANNELS = tuple(conv[2] for conv in _ALEXNET_CONVS)
MIN_RESOLUTION = 31  # Smallest image side for which the second max pool still has a 3x3 window to reduce.

ALEXNET_SHAPES = {  # torchvision state-dict key -> shape, for the tensors used here.
    key: shape
    for index, in_ch, out_ch, kernel, _, _ in _ALEXNET_CONVS
    for key, shape in ((f'features.{index}.weight', (out_ch, in_ch, kernel, kernel)),
                       (f'features.{index}.bias', (out_ch,)))
}
LINEAR_SHAPES = {f'lin{i}.model.1.weight': (1, ch, 1, 1) for i, ch in enumerate(TAP_CHANNELS)}  # Public LPIPS keys.

# LPIPS v0.1 input scaling: images in [-1, 1] become (x - shift) / scale, roughly ImageNet normalisation.
_INPUT_SHIFT = (-.030, -.088, -.188)
_INPUT_SCALE = (.458, .448, .450)
_NORM_EPS = 1e-10  # Added to the channel norm before dividing, as the LPIPS reference does.

#----------------------------------------------------------------------------


def select_weights(state, shapes, source):
    """The tensors of `state` named in `shapes` (key -> shape), as float32; ValueError naming `source` and the key."""
    if not isinstance(state, dict):
        raise ValueError(f'{source}: expected a dict of tensors (a state dict), got {type(state).__name__}')
    selected = {}
    for key, shape in shapes.items():
        if key not in state:
            raise ValueError(f'{source}: missing {key} (expected a tensor of shape {list(shape)})')
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise ValueError(f'{source}: {key} is a {type(value).__name__}, expected a tensor of shape {list(shape)}')
        if tuple(value.shape) != tuple(shape):
            raise ValueError(f'{source}: {key} has shape {list(value.shape)}, expected {list(shape)}')
        selected[key] = value.detach().to(torch.float32)
    return selected


def unit_normalize(features, eps=_NORM_EPS):
    """Features divided by their Euclidean norm along channels (LPIPS eq. 1, the hat on y)."""
    return features / (features.square().sum(dim=1, keepdim=True).sqrt() + eps)


def layer_distance(features0, features1, weight):
    """One tap's term of LPIPS eq. 1: spatial mean of the weighted squared difference of unit features -> [N]."""
    difference = (unit_normalize(features0) - unit_normalize(features1)).square()
    return torch.nn.functional.conv2d(difference, weight).mean(dim=[1, 2, 3])

#----------------------------------------------------------------------------


class AlexNetFeatures(torch.nn.Module):
    """AlexNet's convolutional part up to the last ReLU; parameter names match torchvision's alexnet().features."""

    def __init__(self):
        super().__init__()
        layers = []
        for index, in_channels, out_channels, kernel, stride, padding in _ALEXNET_CONVS:
            assert len(layers) == index  # Keeps the torchvision indices, hence its state-dict keys.
            layers += [torch.nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding),
                       torch.nn.ReLU()]
            if index in _POOLED_AFTER:
                layers.append(torch.nn.MaxPool2d(kernel_size=3, stride=2))
        self.features = torch.nn.Sequential(*layers)

    def forward(self, x):
        """The five ReLU outputs, shallowest first."""
        taps = []
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, torch.nn.ReLU):
                taps.append(x)
        return taps


class LPIPS(torch.nn.Module):
    """LPIPS v0.1 (AlexNet) distance between two image batches in [-1, 1]; weights are fixed, inputs get gradients."""

    def __init__(self,
        alexnet_state = None,   # torchvision AlexNet state dict (features.* used; others ignored); None: random init.
        linear_state  = None,   # LPIPS v0.1 weights, keys 'lin{i}.model.1.weight'; None: random non-negative init.
    ):
        super().__init__()
        self.net = AlexNetFeatures()
        self.lins = torch.nn.ParameterList([torch.nn.Parameter(torch.rand([1, ch, 1, 1]) / ch) for ch in TAP_CHANNELS])
        if alexnet_state is not None:
            self.net.load_state_dict(select_weights(alexnet_state, ALEXNET_SHAPES, 'alexnet_state'))
        if linear_state is not None:
            weights = select_weights(linear_state, LINEAR_SHAPES, 'linear_state')
            for lin, key in zip(self.lins, LINEAR_SHAPES):
                lin.data.copy_(weights[key])
        self.register_buffer('input_shift', torch.tensor(_INPUT_SHIFT).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer('input_scale', torch.tensor(_INPUT_SCALE).reshape(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)  # A fixed metric: only its inputs receive gradients.

    def forward(self, img0, img1):
        """img0, img1: float [N, 3, H, W] in [-1, 1], H and W >= MIN_RESOLUTION -> distances [N]."""
        check_images(img0, img1)
        x = torch.cat([img0, img1]).to(torch.float32)  # One pass through AlexNet for both batches.
        x = (x - self.input_shift) / self.input_scale
        distance = 0
        for taps, lin in zip(self.net(x), self.lins):
            features0, features1 = taps.chunk(2)
            distance = distance + layer_distance(features0, features1, lin)
        return distance


def check_images(img0, img1):
    """ValueError unless img0 and img1 are float NCHW RGB batches of one shape that AlexNet can reduce."""
    for name, img in (('img0', img0), ('img1', img1)):
        if not isinstance(img, torch.Tensor) or img.ndim != 4 or img.shape[1] != 3 or not img.is_floating_point():
            got = f'{img.dtype} {list(img.shape)}' if isinstance(img, torch.Tensor) else type(img).__name__
            raise ValueError(f'LPIPS: {name} must be a float tensor [N, 3, H, W] in [-1, 1], got {got}')
    if img0.shape != img1.shape:
        raise ValueError(f'LPIPS: images must have one shape, got {list(img0.shape)} and {list(img1.shape)}')
    if min(img0.shape[2:]) < MIN_RESOLUTION:
        raise ValueError(f'LPIPS: images must be at least {MIN_RESOLUTION}x{MIN_RESOLUTION} px for AlexNet, '
                         f'got {img0.shape[2]}x{img0.shape[3]}; upsample them first')

#----------------------------------------------------------------------------


def check_lpips_available(detector_dir=None, verbose=False):
    """Paths of (AlexNet file, LPIPS file): local or downloaded; DetectorUnavailableError (one line) otherwise.

    Cheap enough to call before training starts, so a missing file fails the run before step 1.
    """
    paths, problems = [], []
    for weights in (ALEXNET, LPIPS_ALEX):
        try:
            paths.append(detectors.resolve_detector_file(weights, detector_dir=detector_dir, verbose=verbose))
        except detectors.DetectorUnavailableError as error:
            problems.append(str(error))
    if problems:
        raise detectors.DetectorUnavailableError(
            f'LPIPS needs {ALEXNET.file_name} and {LPIPS_ALEX.file_name}, both in the folder given with '
            f'--detector-dir (or ${detectors.DETECTOR_DIR_ENV}) or downloadable: ' + '; '.join(problems))
    return tuple(paths)


def read_weights(path, shapes):
    """The tensors named in `shapes` from the weights-only torch file `path`; DetectorUnavailableError otherwise."""
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # torch raises several types for foreign or damaged archives.
        raise detectors.DetectorUnavailableError(
            f'{path}: not a readable weights-only torch file ({misc.torch_load_reason(error)})') from error
    try:
        return select_weights(state, shapes, path)
    except ValueError as error:
        raise detectors.DetectorUnavailableError(str(error)) from error


def check_lpips_readable(detector_dir=None):
    """Both LPIPS files found and read as weights of the right shapes (DetectorUnavailableError naming the file
    otherwise); for checks before training starts, where a damaged file must fail, not at the first step."""
    alexnet_path, linear_path = check_lpips_available(detector_dir=detector_dir)
    read_weights(alexnet_path, ALEXNET_SHAPES)
    read_weights(linear_path, LINEAR_SHAPES)


def load_lpips(device, detector_dir=None, verbose=False):
    """Find, read and build LPIPS v0.1 (AlexNet) on `device`: eval mode, no parameter requires grad."""
    alexnet_path, linear_path = check_lpips_available(detector_dir=detector_dir, verbose=verbose)
    alexnet_state = read_weights(alexnet_path, ALEXNET_SHAPES)
    linear_state = read_weights(linear_path, LINEAR_SHAPES)
    return LPIPS(alexnet_state=alexnet_state, linear_state=linear_state).eval().requires_grad_(False).to(device)
