"""What is trained and how: networks/, dataset/, augment/, the objectives (loss.py: StyleGAN2's; rpgan.py: RpGAN +
R1 + R2; regularizers.py: GGDR, GLeaD; transition.py: transitional conditioning), the training loop and its parts
(run/, with the cosine schedules), and the command-line layer above the loop (cli/)."""

from torch_utils import persistence

# Snapshots written before training/ was grouped into packages name these modules; their classes live
# in the new ones. Registered here because Python imports this package before it finds that an old
# module is gone, so a plain pickle.load of an old snapshot works as well.
MOVED_MODULES = {
    'training.networks_layers':         'training.networks.layers',
    'training.networks_synthesis':      'training.networks.synthesis',
    'training.networks_squeeze':        'training.networks.squeeze',
    'training.networks_generator':      'training.networks.generator',
    'training.networks_discriminator':  'training.networks.discriminator',
}


def _register_moved_modules():
    for old_name, new_name in MOVED_MODULES.items():
        persistence.module_moved(old_name, new_name)


_register_moved_modules()
