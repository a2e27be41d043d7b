"""The generator as an ONNX graph: mapping + synthesis, constant noise, truncation baked in; inputs z and c with a
dynamic batch axis, output images in [-1, 1]. Needs the optional extra: pip install .[onnx]."""

# Traced with the reference (plain PyTorch) ops in float32, which every ONNX runtime can execute; the fused CUDA
# kernels have no ONNX form. Modulated convolutions run unfused (styles scale the activations around one shared
# conv, the same maths): the fused form is a grouped conv with one group per sample, which a graph with a dynamic
# batch cannot hold. The truncation psi and cutoff are constants of the graph.

import torch

import dnnlib

ONNX_EXTRA_HINT = 'ONNX export needs the onnx package: pip install .[onnx]'
OPSET = 17


class _ExportedGenerator(torch.nn.Module):
    def __init__(self, G, truncation_psi, truncation_cutoff):
        super().__init__()
        self.G = G
        self.truncation_psi = truncation_psi
        self.truncation_cutoff = truncation_cutoff

    def forward(self, z, c):
        return self.G(z, c, truncation_psi=self.truncation_psi, truncation_cutoff=self.truncation_cutoff,
                      noise_mode='const', force_fp32=True, fused_modconv=False)


def check_onnx_available():
    """Raise ImportError with one line saying how to get ONNX export."""
    try:
        import onnx  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import  # The optional [onnx] extra.
    except ImportError:
        raise ImportError(ONNX_EXTRA_HINT) from None


def export_generator(G, dest, truncation_psi=1.0, truncation_cutoff=None):
    """Write G (float32, on the CPU) to `dest` as ONNX, through a temporary file renamed into place."""
    check_onnx_available()
    G = G.to('cpu').eval().requires_grad_(False)
    model = _ExportedGenerator(G, truncation_psi, truncation_cutoff)
    z = torch.zeros([2, G.z_dim])
    c = torch.zeros([2, G.c_dim])
    if G.c_dim:
        c[:, 0] = 1
    with dnnlib.util.atomic_write(dest, 'wb') as f, torch.no_grad():
        torch.onnx.export(model, (z, c), f, input_names=['z', 'c'], output_names=['img'], opset_version=OPSET,
                          dynamic_axes={'z': {0: 'batch'}, 'c': {0: 'batch'}, 'img': {0: 'batch'}}, dynamo=False)
