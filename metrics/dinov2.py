"""DINOv2 ViT/14 (Oquab et al. 2023) as a feature detector for FD-DINOv2: our implementation, the official weights.

The official checkpoints (dinov2_vit{s,b,l,g}14_pretrain.pth, plain state dicts) load into `VisionTransformer` by
their own key names, read with torch.load(weights_only=True); no code is downloaded or run from them. The size
is read off the file (width and depth). `DinoV2Detector` is the FD-DINOv2 protocol of EDM2 (Karras et al. 2024):
uint8 images -> values 0..255 resized to 224x224 (bicubic, antialiased), divided by 255, normalised with ImageNet's
mean and std -> the final-norm class token. docs/metrics_protocol.md says where each choice comes from.
"""

import math

import torch

PATCH_SIZE = 14
TRAINING_RESOLUTION = 518               # The checkpoints' position embeddings cover a 37x37 patch grid.
POS_EMBED_OFFSET = 0.1                  # Added to the target grid size when the embeddings are resized (see below).
LAYER_NORM_EPS = 1e-6
INPUT_RESOLUTION = 224                  # FD-DINOv2 (EDM2): images are resized to this before the network.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (width, depth, heads, feed-forward): the official model sizes, all with patch size 14.
ARCHITECTURES = {
    'vits14': (384, 12, 6, 'mlp'),
    'vitb14': (768, 12, 12, 'mlp'),
    'vitl14': (1024, 24, 16, 'mlp'),
    'vitg14': (1536, 40, 24, 'swiglu'),
}

#----------------------------------------------------------------------------
# The network, with the official module and parameter names.

class PatchEmbed(torch.nn.Module):
    def __init__(self, width):
        super().__init__()
        self.proj = torch.nn.Conv2d(3, width, kernel_size=PATCH_SIZE, stride=PATCH_SIZE)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # [N, patches, width]


class Attention(torch.nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.qkv = torch.nn.Linear(width, 3 * width)
        self.proj = torch.nn.Linear(width, width)

    def forward(self, x):
        n, tokens, width = x.shape
        q, k, v = self.qkv(x).reshape(n, tokens, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        x = torch.nn.functional.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(head width)) v
        return self.proj(x.transpose(1, 2).reshape(n, tokens, width))


class Mlp(torch.nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc1 = torch.nn.Linear(width, 4 * width)
        self.fc2 = torch.nn.Linear(4 * width, width)

    def forward(self, x):
        return self.fc2(torch.nn.functional.gelu(self.fc1(x)))


class SwiGLU(torch.nn.Module):
    """ViT-g's feed-forward: silu(a) * b from one projection, then back; hidden width 2/3 of 4x, rounded up to 8."""

    def __init__(self, width):
        super().__init__()
        hidden = (int(4 * width * 2 / 3) + 7) // 8 * 8
        self.w12 = torch.nn.Linear(width, 2 * hidden)
        self.w3 = torch.nn.Linear(hidden, width)

    def forward(self, x):
        a, b = self.w12(x).chunk(2, dim=-1)
        return self.w3(torch.nn.functional.silu(a) * b)


class LayerScale(torch.nn.Module):
    def __init__(self, width):
        super().__init__()
        self.gamma = torch.nn.Parameter(torch.ones(width))

    def forward(self, x):
        return x * self.gamma


class Block(torch.nn.Module):
    def __init__(self, width, heads, feed_forward):
        super().__init__()
        self.norm1 = torch.nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.attn = Attention(width, heads)
        self.ls1 = LayerScale(width)
        self.norm2 = torch.nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(width) if feed_forward == 'mlp' else SwiGLU(width)
        self.ls2 = LayerScale(width)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class VisionTransformer(torch.nn.Module):
    """DINOv2's ViT/14 backbone; forward(images normalised, [N, 3, H, W], H and W multiples of 14) -> [N, width]."""

    def __init__(self,
        arch = 'vitl14',        # One of ARCHITECTURES.
    ):
        super().__init__()
        width, depth, heads, feed_forward = ARCHITECTURES[arch]
        grid = TRAINING_RESOLUTION // PATCH_SIZE
        self.arch = arch
        self.patch_embed = PatchEmbed(width)
        self.cls_token = torch.nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = torch.nn.Parameter(torch.zeros(1, 1 + grid * grid, width))
        self.mask_token = torch.nn.Parameter(torch.zeros(1, width))  # Used in training only; part of the checkpoint.
        self.blocks = torch.nn.ModuleList([Block(width, heads, feed_forward) for _ in range(depth)])
        self.norm = torch.nn.LayerNorm(width, eps=LAYER_NORM_EPS)

    def position_embeddings(self, rows, cols):
        """The class token's embedding and the patch grid's, resized from the training grid to rows x cols.

        As the official model does: bicubic without antialiasing, in float32, with the scale factor
        (target + 0.1) / source rather than the target size, so sampling positions are those of the official code.
        """
        grid = int(math.isqrt(self.pos_embed.shape[1] - 1))
        if rows == cols == grid:
            return self.pos_embed
        embed = self.pos_embed.float()
        patches = embed[:, 1:].reshape(1, grid, grid, -1).permute(0, 3, 1, 2)
        scale = ((rows + POS_EMBED_OFFSET) / grid, (cols + POS_EMBED_OFFSET) / grid)
        patches = torch.nn.functional.interpolate(patches, scale_factor=scale, mode='bicubic', antialias=False)
        if tuple(patches.shape[-2:]) != (rows, cols):
            raise ValueError(f'DINOv2: position embeddings resized to {list(patches.shape[-2:])}, expected {[rows, cols]}')
        patches = patches.permute(0, 2, 3, 1).reshape(1, rows * cols, -1)
        return torch.cat([embed[:, :1], patches], dim=1).to(self.pos_embed.dtype)

    def forward(self, x):
        n, _, height, width = x.shape
        if height % PATCH_SIZE or width % PATCH_SIZE:
            raise ValueError(f'DINOv2: image size {height}x{width} is not a multiple of the patch size {PATCH_SIZE}')
        tokens = torch.cat([self.cls_token.expand(n, -1, -1), self.patch_embed(x)], dim=1)
        tokens = tokens + self.position_embeddings(height // PATCH_SIZE, width // PATCH_SIZE)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)[:, 0]  # The class token after the final norm.

#----------------------------------------------------------------------------
# Reading a checkpoint.

def architecture_of(state):
    """The ARCHITECTURES key whose width and depth the state dict has, or ValueError naming what it has."""
    width = state['cls_token'].shape[-1] if 'cls_token' in state else None
    depth = len({key.split('.')[1] for key in state if key.startswith('blocks.')})
    for arch, (arch_width, arch_depth, _heads, _ff) in ARCHITECTURES.items():
        if (arch_width, arch_depth) == (width, depth):
            return arch
    raise ValueError(f'not a DINOv2 ViT/14 checkpoint (width {width}, {depth} blocks; expected one of '
                     f'{", ".join(f"{a}: {w}x{d}" for a, (w, d, _h, _f) in ARCHITECTURES.items())})')


def load_vision_transformer(path, device='cpu'):
    """VisionTransformer with the weights of the checkpoint at `path` (read weights-only), in eval mode."""
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # pylint: disable=broad-except
        raise ValueError(f'{path}: not a readable checkpoint ({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})') from None
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise ValueError(f'{path}: expected a state dict of tensors (an official dinov2_vit*14_pretrain.pth)')
    try:
        model = VisionTransformer(architecture_of(state))
        model.load_state_dict(state, strict=True)
    except (ValueError, RuntimeError) as exc:
        raise ValueError(f'{path}: {str(exc).strip().splitlines()[0]}') from None
    return model.eval().requires_grad_(False).to(device)

#----------------------------------------------------------------------------
# The FD-DINOv2 detector.

def preprocess(images):
    """uint8 [N, C, H, W] (C = 1 or 3) -> the network's input: 224x224, bicubic with antialiasing on values 0..255,
    then / 255 and ImageNet normalisation. Grayscale is repeated to three channels first."""
    x = images.to(torch.float32)
    if x.shape[1] == 1:
        x = x.repeat([1, 3, 1, 1])
    x = torch.nn.functional.interpolate(x, size=(INPUT_RESOLUTION, INPUT_RESOLUTION), mode='bicubic', antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).reshape(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).reshape(1, 3, 1, 1)
    return (x / 255 - mean) / std


class DinoV2Detector(torch.nn.Module):
    """detector(uint8 NCHW) -> [N, width] FD-DINOv2 features, the calling convention of metrics/detectors.py."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, images, **_kwargs):
        return self.network(preprocess(images))


def load_detector(path, device='cpu'):
    return DinoV2Detector(load_vision_transformer(path, device)).eval()
