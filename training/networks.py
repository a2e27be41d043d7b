"""The networks of stylegan2-ada-pytorch under their official names, plus the squeeze block; `python -m training.networks --summary`."""

# Official pickles refer to every class as `training.networks.<Name>`; training/legacy.py looks the
# names up here. The classes live in the networks_* modules, split by responsibility.

from training.networks_discriminator import (DiscriminatorBlock, DiscriminatorEpilogue, Discriminator,  # noqa: F401
                                             MinibatchStdLayer)
from training.networks_generator import SYNTHESIS_BLOCKS, Generator, SynthesisNetwork  # noqa: F401
from training.networks_layers import (Conv2dLayer, FullyConnectedLayer, MappingNetwork, SynthesisLayer,  # noqa: F401
                                      ToRGBLayer, modulated_conv2d, normalize_2nd_moment)
from training.networks_squeeze import SQUEEZE_ABLATIONS, SqueezeBlock  # noqa: F401
from training.networks_synthesis import SynthesisBlock  # noqa: F401

if __name__ == '__main__':
    from training import networks_summary
    networks_summary.main()  # pylint: disable=no-value-for-parameter
