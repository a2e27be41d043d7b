"""The generator and discriminator: stylegan2-ada-pytorch's networks under their official names, plus the squeeze block."""

# Official pickles refer to every class as `training.networks.<Name>`; training/legacy.py looks the
# names up here. Below the package: layers.py (shared by G and D), synthesis.py (orig/skip/resnet
# blocks), squeeze.py, generator.py (block registry), discriminator.py, decoder.py (GGDR/GLeaD heads of D),
# summary.py (parameter tables).
# `python -m training.cli.summary` prints the tables for a preset.

from training.networks.discriminator import (DiscriminatorBlock, DiscriminatorEpilogue, Discriminator,  # noqa: F401
                                             MinibatchStdLayer)
from training.networks.decoder import FeatureDecoder, GLeaDHeads  # noqa: F401
from training.networks.generator import SYNTHESIS_BLOCKS, Generator, SynthesisNetwork  # noqa: F401
from training.networks.layers import (Conv2dLayer, FullyConnectedLayer, MappingNetwork, SynthesisLayer,  # noqa: F401
                                      ToRGBLayer, image_shape, modulated_conv2d, normalize_2nd_moment)
from training.networks.squeeze import SQUEEZE_ABLATIONS, SqueezeBlock  # noqa: F401
from training.networks.synthesis import SynthesisBlock  # noqa: F401
