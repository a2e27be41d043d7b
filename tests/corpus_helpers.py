"""Bad inputs for the safety corpus (damaged images, archives, label files, network files, resume states) and tool arguments."""

import errno
import io
import json
import os
import pickle
import shutil
import tarfile
import tempfile
import zipfile

import numpy as np
import PIL.Image
import torch

from tests import full_disk
from tests import metrics_helpers
from tests import safety_helpers as evil
from tests.train_helpers import TINY_ARGS, write_image_folder

#----------------------------------------------------------------------------
# Plain files.


def write_bytes(path, data):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)
    return str(path)


def garbage(path, size=3000):
    """Random bytes that are no known file format."""
    return write_bytes(path, np.random.RandomState(1).bytes(size))


def truncated_copy(source, path, fraction=0.5):
    """The first `fraction` of `source`: what an interrupted download or copy leaves."""
    with open(source, 'rb') as f:
        data = f.read()
    return write_bytes(path, data[:int(len(data) * fraction)])


def copy(source, path):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    shutil.copyfile(source, path)
    return str(path)


def pickle_file(path, obj):
    return write_bytes(path, pickle.dumps(obj))


def tensorflow_pickle(path):
    """A pickle naming the class every TensorFlow-era StyleGAN network pickle names."""
    return write_bytes(path, b'\x80\x02cdnnlib.tflib.network\nNetwork\nq\x00)\x81q\x01.')

#----------------------------------------------------------------------------
# Images and image datasets.


def png_bytes(size=16, mode='RGB', seed=0):
    """A PNG of random pixels; mode 'I;16' gives a 16-bit grayscale PNG."""
    rnd = np.random.RandomState(seed)
    width, height = (size, size) if isinstance(size, int) else size
    if mode == 'I;16':
        image = PIL.Image.fromarray(rnd.randint(0, 65536, size=[height, width]).astype(np.uint16))
    else:
        channels = len(PIL.Image.new(mode, (1, 1)).getbands())
        pixels = rnd.randint(0, 256, size=[height, width, channels], dtype=np.uint8)
        image = PIL.Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels, mode)
    buffer = io.BytesIO()
    image.save(buffer, format='PNG')
    return buffer.getvalue()


def cut_pixels(png):
    """Keep the header (size and mode still read fine) but cut the compressed pixel data short."""
    return png[:len(png) // 2]


def image_folder(path, num_images=4, replace=None, labels=None):
    """write_image_folder's 16x16 RGB images, then `replace` ({file name: bytes}) and a raw `labels` dataset.json."""
    write_image_folder(path, num_images=num_images, resolution=16)
    for name, data in (replace or {}).items():
        write_bytes(os.path.join(path, name), data)
    if labels is not None:
        write_bytes(os.path.join(path, 'dataset.json'), labels if isinstance(labels, bytes) else json.dumps(labels).encode())
    return str(path)


def labels_for(names, label=0):
    """A dataset.json object labelling each name with `label` (or label(i) when it is callable)."""
    return {'labels': [[name, label(i) if callable(label) else label] for i, name in enumerate(names)]}


def image_names(num_images=4):
    return [f'img{i:05d}.png' for i in range(num_images)]


def zip_file(path, members):
    """A zip of {member name: bytes}."""
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with zipfile.ZipFile(path, 'w') as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return str(path)


def image_zip(path, replace=None):
    """A dataset zip of four 16x16 PNGs, with `replace` ({member name: bytes}) swapped in."""
    members = {name: png_bytes(seed=i) for i, name in enumerate(image_names())}
    members.update(replace or {})
    return zip_file(path, members)


def cifar_tarball(path, batch):
    """A CIFAR-10 python tarball whose data_batch_1 holds the pickled `batch`."""
    data = pickle.dumps(batch, protocol=2)
    with tarfile.open(path, 'w:gz') as tar:
        info = tarfile.TarInfo('cifar-10-batches-py/data_batch_1')
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return str(path)

#----------------------------------------------------------------------------
# Network files and resume states.


def weights_only_file(path, content):
    """torch.save(content): a weights-only model file as a hostile or foreign writer could make it."""
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    torch.save(content, path)
    return str(path)


def malicious_model(path, payload):
    """A weights-only model file (zip archive) whose G_ema record is `payload`."""
    from training import export  # pylint: disable=import-outside-toplevel
    return weights_only_file(path, dict(format=export.FORMAT_NAME, format_version=export.FORMAT_VERSION,
                                        networks=dict(G_ema=payload)))


def edited_model(source, path, edit):
    """A copy of weights-only file `source` after `edit(content)` changed its plain content."""
    content = torch.load(source, weights_only=True)
    edit(content)
    return weights_only_file(path, content)


def shrink_first_tensor(content):
    """Replace G_ema's first weight by a tensor of another shape, as a bad edit or a foreign file would."""
    state = content['networks']['G_ema']['state_dict']
    name = next(iter(state))
    state[name] = torch.zeros([1])


def run_copy(run_dir, folder):
    """Copy a finished run's snapshot pair and options into `folder` (a run directory); returns the copied pickle."""
    for name in ('network-snapshot-000000.pkl', 'network-snapshot-000000.resume.pt', 'training_options.json'):
        copy(os.path.join(run_dir, name), os.path.join(folder, name))
    return os.path.join(str(folder), 'network-snapshot-000000.pkl')


def tamper_resume_state(pkl, marker):
    """Put a payload that opens `marker` into the resume state beside `pkl`."""
    state_path = pkl.replace('.pkl', '.resume.pt')
    state = torch.load(state_path, weights_only=True)
    state['loss'] = evil.open_payload(marker)
    torch.save(state, state_path)


def replace_pickle_only(pkl):
    """Rewrite the pickle with changed weights but keep its resume state: a run killed between the two writes."""
    with open(pkl, 'rb') as f:
        snapshot = pickle.load(f)  # Our own trusted test file.
    with torch.no_grad():
        next(snapshot['G_ema'].parameters()).add_(1)
    pickle_file(pkl, snapshot)

#----------------------------------------------------------------------------
# What a run leaves behind.


def file_state(root):
    """{relative path: bytes, or None for a folder} of everything under `root`."""
    state = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            state[os.path.relpath(os.path.join(folder, name), root)] = None
        for name in files:
            path = os.path.join(folder, name)
            with open(path, 'rb') as f:
                state[os.path.relpath(path, root)] = f.read()
    return state


def changes(before, after, may_create=(), may_remove=()):
    """Lines describing what a failed run changed under a folder, beyond what the case allows."""
    problems = []
    for path, data in before.items():
        if path in may_remove:
            continue
        if path not in after:
            problems.append(f'removed {path}')
        elif after[path] != data:
            problems.append(f'changed {path}')
    for path in after:
        if path in before:
            continue
        if path.endswith('.tmp'):
            problems.append(f'left temporary file {path}')
        elif not any(path == allowed or path.startswith(allowed + os.sep) for allowed in may_create):
            problems.append(f'created {path}')
    return problems

#----------------------------------------------------------------------------
# What a case's setup gets, and the arguments of each tool with good inputs.


class Context:
    """What a setup function gets: its own folder, the shared inputs, the payload marker, disk faults."""

    def __init__(self, tmp, shared_inputs, monkeypatch):
        self.tmp = tmp
        self.s = shared_inputs
        self.marker = str(tmp / 'payload-ran')
        self._monkeypatch = monkeypatch

    def fill_disk(self, allowed_files=0, name_part=''):
        """In this process, every atomic write after the first `allowed_files` hits a real ENOSPC."""
        self._monkeypatch.setattr(tempfile, 'mkstemp', tempfile.mkstemp)  # Restored after the case.
        full_disk.fill_disk_after(allowed_files, name_part)

    def read_only(self):
        def refuse(*args, **kwargs):
            raise OSError(errno.EROFS, 'Read-only file system')
        self._monkeypatch.setattr(tempfile, 'mkstemp', refuse)

# Arguments of each tool with good inputs; a case changes one thing.


def with_flags(base, *extra):
    """`base` flags with those in `extra` replacing same-named ones (click would take the last, but a reader should not need to know)."""
    names = {flag.split('=')[0] for flag in extra}
    return [flag for flag in base if flag.split('=')[0] not in names] + list(extra)


def gen(c, *extra, network=None):
    return with_flags([f'--network={network or c.s.snapshot}', '--seeds=0', f'--outdir={c.tmp / "out"}',
                       '--device=cpu'], *extra)


def projected(c, write_w):
    """generate.py --projected-w with the .npz that write_w(path, G) writes."""
    from training import export  # pylint: disable=import-outside-toplevel
    path = str(c.tmp / 'projected_w.npz')
    write_w(path, export.load_network(c.s.snapshot)['G_ema'])
    return [f'--network={c.s.snapshot}', f'--outdir={c.tmp / "out"}', f'--projected-w={path}', '--device=cpu']


def nan_ws(path, G):
    w = np.zeros([2, G.num_ws, G.w_dim], np.float32)
    w[1, 0, 0] = np.nan
    np.savez(path, w=w)


def string_ws(path, G):
    np.savez(path, w=np.full([2, G.num_ws, G.w_dim], 'a'))


def object_ws(path, G):
    np.savez(path, w=np.array([{'w': 1}], dtype=object))


def style_mixing(c, *extra):
    return without('--seeds', gen(c, '--rows=1', '--cols=2', *extra))


def without(flag, args):
    return [arg for arg in args if arg.split('=')[0] != flag]


def met(c, *extra, network=None):
    return with_flags([f'--network={network or c.s.snapshot}', '--metrics=fid50k_full', f'--data={c.s.data}',
                       '--device=cpu', f'--detector-dir={c.s.detectors}'], *extra)


def tr(c, *extra, data=None):
    return with_flags([f'--outdir={c.tmp / "runs"}', f'--data={data or c.s.data}', *TINY_ARGS, '--kimg=0.004'], *extra)


def dry(c, *extra, data=None):
    """Flag checks: they must stop a --dry-run already."""
    return tr(c, *extra, '--dry-run', data=data)


def lpips_dir(c, damage=None):
    """train.py --dry-run --reg-type=glead with a folder of stand-in LPIPS weights, one file damaged by damage(path)."""
    from metrics import lpips  # pylint: disable=import-outside-toplevel
    from tests import metrics_helpers  # pylint: disable=import-outside-toplevel
    folder, _alexnet, _linear = metrics_helpers.write_lpips_weight_dir(c.tmp / 'lpips')
    if damage is not None:
        damage(os.path.join(folder, lpips.ALEXNET.file_name))
    return dry(c, '--reg-type=glead', f'--detector-dir={folder}')


def dt(c, source, *extra, dest=None):
    return with_flags([f'--source={source}', f'--dest={dest or c.tmp / "out.zip"}'], *extra)


def export_args(c, network=None, dest=None, *extra):
    return [f'--network={network or c.s.snapshot}', f'--dest={dest or c.tmp / "model.pt"}', *extra]


def legacy_args(c, source=None, dest=None, *extra):
    return [f'--source={source or c.s.snapshot}', f'--dest={dest or c.tmp / "ours.pkl"}', *extra]


def evil_pkl(c, payload, name='evil.pkl'):
    return evil.network_pickle(c.tmp / name, payload)


def labelled(c, labels, num_images=4, **kwargs):
    return image_folder(c.tmp / 'data', num_images=num_images, labels=labels, **kwargs)


def tampered_run(c):
    pkl = run_copy(c.s.run, c.tmp / 'runs' / '00000-tampered')
    tamper_resume_state(pkl, c.marker)
    return pkl


def half_replaced_run(c):
    pkl = run_copy(c.s.run, c.tmp / 'runs' / '00000-killed')
    replace_pickle_only(pkl)
    return pkl


def garbage_resume_state(c):
    pkl = run_copy(c.s.run, c.tmp / 'runs' / '00000-x')
    garbage(pkl.replace('.pkl', '.resume.pt'))
    return pkl


def stand_in_run(c):
    """A stand-in snapshot in a run directory with one earlier metric line; the disk is full afterwards."""
    run = c.tmp / 'run'
    run.mkdir()
    kwargs = metrics_helpers.dataset_kwargs_for(c.s.data)
    (run / 'training_options.json').write_text(json.dumps(dict(training_set_kwargs=kwargs)))
    (run / 'metric-fid1k_full.jsonl').write_text('{"metric": "fid1k_full", "earlier": true}\n')
    G = metrics_helpers.StandInGenerator()
    pkl = pickle_file(run / 'network-snapshot-000000.pkl', dict(G=G, D=None, G_ema=G, augment_pipe=None,
                                                                    training_set_kwargs=None))
    c.fill_disk()
    return met(c, '--metrics=fid1k_full', network=pkl)


def run_with_options_file(c, text):
    pkl = copy(c.s.snapshot, c.tmp / 'run' / 'network-snapshot-000000.pkl')
    write_bytes(c.tmp / 'run' / 'training_options.json', text)
    return pkl


def mnist_cut_short(c):
    """An MNIST image file whose header promises 60000 images of 28x28 but holds 10."""
    header = bytes([0, 0, 8, 3]) + (60000).to_bytes(4, 'big') + (28).to_bytes(4, 'big') * 2
    return write_bytes(c.tmp / 'train-images-idx3-ubyte', header + bytes(10 * 28 * 28))



#----------------------------------------------------------------------------
# Files whose training_set_kwargs name a callable other than our dataset class; calc_metrics must refuse them.


def hostile_dataset_kwargs(c, class_name):
    """training_set_kwargs naming `class_name` with arguments that would truncate {tmp}/victim.txt or run a shell."""
    write_bytes(c.tmp / 'victim.txt', b'keep me')
    if class_name == 'logging.basicConfig':
        return dict(class_name=class_name, filename=str(c.tmp / 'victim.txt'), filemode='w')
    return dict(class_name=class_name, command=f'touch {c.marker}; : > {c.tmp / "victim.txt"}')


def model_naming(c, class_name):
    """calc_metrics arguments (no --data) for a copy of the shared model.pt whose training_set_kwargs name `class_name`."""
    kwargs = hostile_dataset_kwargs(c, class_name)
    model = edited_model(c.s.model, c.tmp / 'evil.pt', lambda content: content.update(training_set_kwargs=kwargs))
    return without('--data', met(c, network=model))


def pickle_naming(c, class_name):
    """calc_metrics arguments (no --data) for a copy of the shared snapshot whose training_set_kwargs name `class_name`."""
    kwargs = hostile_dataset_kwargs(c, class_name)
    with open(c.s.snapshot, 'rb') as f:
        networks = pickle.load(f)
    networks['training_set_kwargs'] = kwargs
    return without('--data', met(c, network=pickle_file(c.tmp / 'evil.pkl', networks)))


def options_naming(c, class_name):
    """calc_metrics arguments (no --data) for a run directory whose training_options.json names `class_name`."""
    kwargs = hostile_dataset_kwargs(c, class_name)
    pkl = run_with_options_file(c, json.dumps(dict(training_set_kwargs=kwargs)).encode('utf-8'))
    return without('--data', met(c, network=pkl))


def proj(c, *extra, network=None, target=None):
    """projector.py arguments: a tiny snapshot, a 16x16 target image and the stand-in detectors, two steps."""
    if target is None:
        target = write_bytes(c.tmp / 'target.png', png_bytes(size=16))
    return with_flags([f'--network={network or c.s.snapshot}', f'--target={target}', f'--outdir={c.tmp / "proj"}',
                       '--num-steps=2', f'--detector-dir={c.s.detectors}', '--device=cpu'], *extra)
