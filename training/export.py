"""The one network loader every CLI uses, and the weights-only file format that needs no unpickling."""

# A network pickle could be a program: unpickling may call anything the file names. We read pickles
# with training.legacy, which refuses everything network pickles do not contain before it runs (see
# torch_utils.safe_unpickle.RestrictedUnpickler), so a hostile pickle is an error, not a program. A
# weights-only file needs no such care: it holds only tensors and plain values (dict, list, tuple, str,
# int, float, bool, None), which `torch.load(path, weights_only=True)` reads without running anything,
# and the networks are rebuilt from this package's own classes with the arguments stored beside them.

import datetime
import os
import zipfile

import click
import torch

import dnnlib
from torch_utils import misc
from torch_utils import persistence
from training import augment
from training import legacy
from training import networks
from training import onnx_export
from training.dataset.labels import LabelError, check_class_names

FORMAT_NAME = 'squeezegan-weights-only'
FORMAT_VERSION = 1
NETWORK_KEYS = ('G', 'D', 'G_ema', 'augment_pipe')  # Keys of the dict that load_network() returns.

#----------------------------------------------------------------------------


class NetworkFileError(ValueError):
    """A network file that cannot be read; the message is one line naming the file and the problem."""

#----------------------------------------------------------------------------
# Which of our classes rebuilds each network. Only these are ever constructed from a weights-only
# file, so the file cannot name something else to run.

CLASS_FOR_KEY = {
    'G':            networks.Generator,
    'G_ema':        networks.Generator,
    'D':            networks.Discriminator,
    'augment_pipe': augment.AugmentPipe,
}

#----------------------------------------------------------------------------
# Writing.


def _to_plain(value, where):
    """Copy `value` into types that torch.load(weights_only=True) accepts (EasyDict -> dict, ...)."""
    if value is None or isinstance(value, bool):
        return value
    for plain_type in (int, float, str):  # Subclasses (torch.__version__ is one) would be pickled by class.
        if isinstance(value, plain_type):
            return plain_type(value)
    if isinstance(value, dict):
        plain = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NetworkFileError(f'{where}: key {key!r} is not a string; cannot store it weights-only')
            plain[key] = _to_plain(item, f'{where}.{key}')
        return plain
    if isinstance(value, (list, tuple)):
        items = [_to_plain(item, f'{where}[{i}]') for i, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if hasattr(value, 'item') and getattr(value, 'shape', None) == ():  # numpy scalar
        return _to_plain(value.item(), where)
    raise NetworkFileError(f'{where}: value of type {type(value).__name__} cannot be stored weights-only')


def _network_record(module, key):
    """Everything needed to rebuild one network: constructor arguments, weights, train/eval mode."""
    if not hasattr(module, 'init_kwargs'):
        raise NetworkFileError(f'{key}: {type(module).__name__} has no recorded constructor arguments '
                               f'(init_kwargs); only persistent classes can be exported')
    state_dict = {name: tensor.detach().to('cpu').clone() for name, tensor in module.state_dict().items()}
    return {
        'class_name':  f'{type(module).__module__}.{type(module).__qualname__}',
        'init_args':   _to_plain(list(getattr(module, 'init_args', ())), f'{key}.init_args'),
        'init_kwargs': _to_plain(dict(module.init_kwargs), f'{key}.init_kwargs'),
        'training':    bool(module.training),
        'state_dict':  state_dict,
    }


def _describe_generator(G):
    """Metadata a reader can check without building anything."""
    synthesis_kwargs = dict(G.init_kwargs.get('synthesis_kwargs', {}) or {})
    return {
        'resolution':    int(G.img_resolution),
        'img_channels':  int(G.img_channels),
        'c_dim':         int(G.c_dim),
        'z_dim':         int(G.z_dim),
        'w_dim':         int(G.w_dim),
        'num_ws':        int(G.num_ws),
        'architecture':  str(synthesis_kwargs.get('architecture', 'skip')),
        'squeeze_ratio': _to_plain(synthesis_kwargs.get('squeeze_ratio', None), 'squeeze_ratio'),
    }


def weights_only_dict(networks, source=None):
    """The content of a weights-only file for `networks` (the dict load_network returns)."""
    generator = networks.get('G_ema') if networks.get('G_ema') is not None else networks.get('G')
    if generator is None:
        raise NetworkFileError(f'{source or "networks"}: holds neither G_ema nor G; nothing to export')
    metadata = _describe_generator(generator)
    metadata['source'] = None if source is None else str(source)
    metadata['created'] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')
    metadata['torch_version'] = str(torch.__version__)
    records = {key: _network_record(networks[key], key)
               for key in NETWORK_KEYS if networks.get(key) is not None}
    training_set_kwargs = networks.get('training_set_kwargs')
    return {
        'format':              FORMAT_NAME,
        'format_version':      FORMAT_VERSION,
        'metadata':            metadata,
        'networks':            records,
        'training_set_kwargs': None if training_set_kwargs is None else _to_plain(dict(training_set_kwargs), 'training_set_kwargs'),
        'class_names':         _class_names(networks.get('class_names'), source),
    }


def save_weights_only(networks, path, source=None):
    """Write `networks` (dict with G, D, G_ema, augment_pipe, training_set_kwargs) to `path` atomically."""
    content = weights_only_dict(networks, source=source)
    with dnnlib.util.atomic_write(path, 'wb') as f:
        torch.save(content, f)

#----------------------------------------------------------------------------
# Reading.


def _local_filename(path_or_url):
    """Local file for a path or URL (URLs are downloaded once into the dnnlib cache)."""
    if not dnnlib.util.is_url(path_or_url, allow_file_urls=True):
        if os.path.isdir(path_or_url):
            raise NetworkFileError(folder_problem(path_or_url))
        if not os.path.isfile(path_or_url):
            raise NetworkFileError(f'{path_or_url}: no such network file')
        return path_or_url
    try:
        return dnnlib.util.open_url(path_or_url, return_filename=True)
    except OSError as error:
        raise NetworkFileError(f'{path_or_url}: cannot fetch network file ({error})') from error


def folder_problem(folder):
    """The error for a folder given as a network: names its newest snapshot pickle, if it has one."""
    # Snapshot names sort in training order (network-snapshot-NNNNNN.pkl, then NNNNNN_RRRimg.pkl; README).
    try:
        names = os.listdir(folder)
    except OSError as error:
        return f'{folder}: a folder, not a network file (and unreadable: {error.strerror}); pass a .pkl or weights-only .pt file'
    snapshots = sorted(name for name in names if name.startswith('network-snapshot-') and name.endswith('.pkl'))
    if not snapshots:
        return f'{folder}: a folder, not a network file, and it holds no network-snapshot-*.pkl; pass a .pkl or weights-only .pt file'
    return f'{folder}: a folder, not a network file; pass one of its snapshots, e.g. the newest: {os.path.join(folder, snapshots[-1])}'


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _rebuild(record, key, filename):
    """One of our modules, built from a stored record and loaded strictly with its weights."""
    try:
        module_class = CLASS_FOR_KEY[key]
        with torch.random.fork_rng(devices=[]):  # Building draws random init weights; keep the caller's RNG.
            module = module_class(*record['init_args'], **record['init_kwargs'])
        module.load_state_dict(record['state_dict'], strict=True)
    except (KeyError, TypeError, RuntimeError, ValueError) as error:
        raise NetworkFileError(f'{filename}: cannot rebuild {key} from the weights-only file '
                               f'({_first_line(error)})') from error
    module.train(bool(record.get('training', False)))
    module.requires_grad_(False)
    return module


def read_weights_only(filename):
    """Networks from a weights-only file; nothing from the file is executed."""
    try:
        content = torch.load(filename, map_location='cpu', weights_only=True)
    except Exception as error:  # torch raises several types for foreign or damaged archives.
        raise NetworkFileError(f'{filename}: not a readable weights-only network file '
                               f'({misc.torch_load_reason(error)})') from error
    if isinstance(content, dict) and {'optimizers', 'progress'} <= set(content):  # training/run/resume.py's state.
        snapshot = (content.get('snapshot') or {}).get('name', 'network-snapshot-*.pkl')
        raise NetworkFileError(f'{filename}: a resume state (optimizers and progress of a run), not a network file; '
                               f'the networks are in the snapshot written with it: {snapshot}')
    if not isinstance(content, dict) or content.get('format') != FORMAT_NAME:
        raise NetworkFileError(f'{filename}: a torch file, but not a {FORMAT_NAME} network file '
                               f'(write one with: python -m training.export --network=PKL --dest=MODEL.pt)')
    if content.get('format_version') != FORMAT_VERSION:
        raise NetworkFileError(f'{filename}: {FORMAT_NAME} version {content.get("format_version")!r} '
                               f'is not supported (this code reads version {FORMAT_VERSION})')
    records = content.get('networks', {})
    unknown = sorted(set(records) - set(NETWORK_KEYS))
    if unknown:
        raise NetworkFileError(f'{filename}: unknown network keys {unknown}; accepted: {list(NETWORK_KEYS)}')
    networks = {key: None for key in NETWORK_KEYS}
    for key, record in records.items():
        networks[key] = _rebuild(record, key, filename)
    networks['class_names'] = _class_names(content.get('class_names'), filename)
    networks['training_set_kwargs'] = content.get('training_set_kwargs')
    if networks['training_set_kwargs'] is not None:
        networks['training_set_kwargs'] = dnnlib.EasyDict(networks['training_set_kwargs'])
    return networks


def read_pickle(filename):
    """Networks from a snapshot or official stylegan2-ada pickle; a file that would run code is refused.

    The pickle is read by training.legacy.load_network_pkl, which runs no code from the file: anything
    network pickles do not contain is refused before it is called, with a one-line NetworkFileError.
    """
    try:
        with open(filename, 'rb') as f:
            networks = legacy.load_network_pkl(f)
    except persistence.UnsafePickleError as error:  # One line that already names the file and the refusal.
        raise NetworkFileError(_first_line(error)) from error
    except Exception as error:  # pickle raises almost any type on a damaged or foreign file.
        raise NetworkFileError(f'{filename}: cannot read network pickle '
                               f'({type(error).__name__}: {_first_line(error)})') from error
    if not isinstance(networks, dict):
        raise NetworkFileError(f'{filename}: the pickle holds a {type(networks).__name__}, not a dict of networks')
    return networks


def is_weights_only_file(filename):
    """True for a torch zip archive (the weights-only format); network pickles are not zip files."""
    return zipfile.is_zipfile(filename)


def _class_names(value, where):
    """A file's optional class names (list of str) or None; anything else is a NetworkFileError."""
    if value is None:
        return None
    try:
        return check_class_names(value, where)
    except LabelError as error:
        raise NetworkFileError(str(error)) from None


def load_network(path_or_url, device='cpu'):
    """Dict with G, D, G_ema, augment_pipe, training_set_kwargs, class_names (absent ones None), modules on
    `device`.

    Accepts weights-only files, snapshot pickles and official stylegan2-ada-pytorch pickles.
    Raises NetworkFileError with a one-line message for anything it cannot read.
    """
    filename = _local_filename(path_or_url)
    if is_weights_only_file(filename):
        networks = read_weights_only(filename)
    else:
        networks = read_pickle(filename)
    result = {key: networks.get(key) for key in NETWORK_KEYS}
    result['training_set_kwargs'] = networks.get('training_set_kwargs')
    result['class_names'] = _class_names(networks.get('class_names'), filename)
    device = torch.device(device)
    for key in NETWORK_KEYS:
        if result[key] is not None:
            result[key] = result[key].to(device)
    return result

#----------------------------------------------------------------------------
# Command line: python -m training.export --network=SNAPSHOT --dest=MODEL.pt


@click.command()
@click.option('--network', 'network_path', help='Snapshot or official pickle (path or URL)', required=True, metavar='PATH')
@click.option('--dest',                    help='File to write: .onnx for the generator as ONNX, else weights-only', required=True, metavar='FILE')
@click.option('--trunc', 'truncation_psi', help='ONNX: truncation psi baked into the graph [default: 1, none]', type=float)
@click.option('--overwrite',               help='Replace --dest if it exists', is_flag=True)
def main(network_path, dest, truncation_psi, overwrite):
    """Convert a network pickle to the weights-only format, which loads with torch.load(weights_only=True), or write
    its generator as ONNX (mapping + synthesis, constant noise; inputs z and c, dynamic batch; images in [-1, 1]).

    \b
    python -m training.export --network=network-snapshot-001000.pkl --dest=model.pt
    python -m training.export --network=network-snapshot-001000.pkl --dest=G.onnx --trunc=0.7
    """
    to_onnx = dest.lower().endswith('.onnx')
    if truncation_psi is not None and not to_onnx:
        raise click.BadParameter(f'{truncation_psi}: --trunc applies to ONNX export (--dest=*.onnx) only',
                                 param_hint='--trunc')
    legacy.check_dest(network_path, dest, overwrite, example='G.onnx' if to_onnx else 'model.pt')
    try:
        networks = load_network(network_path, device='cpu')
        with legacy.writing_dest(dest):
            if to_onnx:
                G = networks['G_ema'] if networks['G_ema'] is not None else networks['G']
                onnx_export.export_generator(G, dest, truncation_psi=1.0 if truncation_psi is None else truncation_psi)
            else:
                save_weights_only(networks, dest, source=network_path)
    except NetworkFileError as error:
        raise click.ClickException(str(error)) from error
    except ImportError as error:  # The optional [onnx] extra.
        raise click.ClickException(f'--dest={dest}: {error}') from None
    if to_onnx:
        click.echo(f'Wrote {dest} (the generator as ONNX, opset {onnx_export.OPSET}; '
                   f'{os.path.getsize(dest) / 2**20:.1f} MiB)')
        return
    stored = [key for key in NETWORK_KEYS if networks[key] is not None]
    click.echo(f'Wrote {dest} ({", ".join(stored)}; {os.path.getsize(dest) / 2**20:.1f} MiB)')


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
