"""Record what the official DINOv2 code computes, so tests can hold metrics/dinov2.py to it without it.

    python tests/reference/record_dinov2.py --reference=/path/to/facebookresearch/dinov2 --commit=SHA

Builds the official ViT-S/14 as torch.hub builds it (dinov2/hub/backbones.py: 518 px, layer scale, no registers,
position embeddings resized bicubically with the 0.1 offset), fills every tensor of its state dict from a seed
(seeded_state below, by sorted key: the official key layout), and records the final-norm class token for fixed
inputs at 224x224 (FD-DINOv2's size: the position embeddings are resized from 37x37 to 16x16), 126x126 and 518x518
(no resize). Writes dinov2_recorded.json beside this file: the keys and shapes, the features, and the parameter
count of every official size (ViT-S/B/L/g-14, built on the meta device).
tests/test_metrics_dinov2.py fills our model from the same seed and compares to 1e-4 relative.
"""

import os
import sys

import torch

sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # After the reference's.
from tests.reference import recording_main  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'dinov2_recorded.json')
SIZES = (224, 126, 518)

#----------------------------------------------------------------------------
# Shared by the recording and our side.

def seeded_state(shapes, seed=0):
    """{key: tensor} for `shapes` ({key: shape}), drawn in sorted key order from one stream: norm weights near 1,
    layer scales near 0.5, everything else small, so activations stay in the range trained weights give."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key in sorted(shapes):
        noise = torch.randn(shapes[key], generator=generator)
        if key.endswith('.gamma'):
            state[key] = 0.5 + 0.1 * noise
        elif ('norm' in key.split('.')[-2] if '.' in key else False) and key.endswith('.weight'):
            state[key] = 1 + 0.1 * noise
        else:
            state[key] = 0.05 * noise
    return state


def inputs(size, seed=1):
    """Two normalised images [2, 3, size, size] (what preprocessing hands the network): smooth plus noise."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn([2, 3, 4, 4], generator=generator)
    smooth = torch.nn.functional.interpolate(coarse, size=(size, size), mode='bilinear', align_corners=False)
    return smooth + 0.3 * torch.randn([2, 3, size, size], generator=generator)

#----------------------------------------------------------------------------

def record(reference_dir):
    sys.path.insert(0, os.path.abspath(reference_dir))
    os.environ['XFORMERS_DISABLED'] = '1'  # Plain PyTorch attention and feed-forward, as on a CPU.
    from dinov2.models import vision_transformer  # pylint: disable=import-outside-toplevel
    model = vision_transformer.vit_small(img_size=518, patch_size=14, init_values=1.0, ffn_layer='mlp', block_chunks=0,
                                         num_register_tokens=0, interpolate_antialias=False, interpolate_offset=0.1)
    shapes = {key: list(value.shape) for key, value in model.state_dict().items()}
    model.load_state_dict(seeded_state(shapes), strict=True)
    model.eval()
    features = {}
    with torch.no_grad():
        for size in SIZES:
            features[str(size)] = model.forward_features(inputs(size))['x_norm_clstoken'].tolist()
    counts = {}
    for arch, builder, ffn in (('vits14', 'vit_small', 'mlp'), ('vitb14', 'vit_base', 'mlp'),
                               ('vitl14', 'vit_large', 'mlp'), ('vitg14', 'vit_giant2', 'swiglufused')):
        with torch.device('meta'):  # Shapes only: ViT-g would need 4.5 GB.
            official = getattr(vision_transformer, builder)(img_size=518, patch_size=14, init_values=1.0, ffn_layer=ffn,
                                                            block_chunks=0, num_register_tokens=0)
        counts[arch] = sum(param.numel() for param in official.parameters())
    return dict(source='facebookresearch/dinov2 dinov2/models/vision_transformer.py (vit_small, hub settings)',
                torch=torch.__version__, shapes=shapes, features=features, param_counts=counts)


if __name__ == '__main__':
    recording_main(__doc__.splitlines()[0], record, OUT)
