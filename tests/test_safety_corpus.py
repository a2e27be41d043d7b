"""A corpus of bad inputs and malicious files, each run as a user would: one 'Error:' line, no traceback, nothing lost.

Every case builds one bad input under its own folder, runs one tool on it (in-process through click, or
as a separate process where the process boundary matters), and expects: a non-zero exit, exactly one
line starting with 'Error:' that names the culprit, no traceback, no payload marker, no temporary file,
nothing created that the case does not allow, and every file that was there before unchanged.
"""

import collections
import importlib
import os
import traceback
import zipfile

import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import dnnlib
from tests import corpus_helpers as bad
from tests import generate_helpers
from tests import metrics_helpers
from tests import safety_helpers as evil
from tests.corpus_helpers import (Context, dry, dt, evil_pkl, export_args, garbage_resume_state, gen, half_replaced_run,
                                  labelled, legacy_args, met, mnist_cut_short, nan_ws, proj, projected, run_with_options_file,
                                  stand_in_run, style_mixing, tampered_run, tr, without)
from tests.train_helpers import TINY_ARGS, write_image_folder

NO_CUDA = not torch.cuda.is_available()
SYSTEM = 'posix.system' if os.name == 'posix' else 'nt.system'

# The click command of each tool, imported when a case runs (module, attribute), and how a user starts it.
TOOLS = {
    'train':        ('train', 'main', ['train.py']),
    'generate':     ('generate', 'generate_images', ['generate.py']),
    'calc_metrics': ('calc_metrics', 'main', ['calc_metrics.py']),
    'dataset_tool': ('dataset_tool', 'main', ['dataset_tool.py']),
    'export':       ('training.export', 'main', ['-m', 'training.export']),
    'legacy':       ('training.legacy', 'convert_network_pickle', ['-m', 'training.legacy']),
    'projector':    ('projector', 'main', ['projector.py']),
}

# tool: a TOOLS key; setup(c) builds the bad input under c.tmp and returns the arguments; expect: fragments of
# the Error line (formatted with tmp=c.tmp); way: 'cli' (in-process), 'process' or 'full-disk:N[:TEXT]'
# (a separate process); may_create / may_remove: paths under c.tmp a failed run may add or delete.
Case = collections.namedtuple('Case', 'tool setup expect way may_create may_remove')


def case(case_id, tool, setup, *expect, way='cli', may_create=(), may_remove=(), xfail=None, skip=None):
    marks = []
    if xfail:
        marks.append(pytest.mark.xfail(strict=True, reason=xfail))
    if skip:
        marks.append(pytest.mark.skipif(skip[0], reason=skip[1]))
    return pytest.param(Case(tool, setup, expect, way, may_create, may_remove), id=case_id, marks=marks)

#----------------------------------------------------------------------------
# Shared inputs, built once: a tiny snapshot and its weights-only export, a conditional snapshot, a tiny
# dataset, a finished tiny training run, stand-in detectors. They live outside the cases' folders.


@pytest.fixture(scope='module')
def shared(tmp_path_factory):
    from training import export  # pylint: disable=import-outside-toplevel
    import train  # pylint: disable=import-outside-toplevel
    root = tmp_path_factory.mktemp('shared')
    s = dnnlib.EasyDict(root=root)
    s.snapshot = generate_helpers.write_snapshot(root / 'network-snapshot-000000.pkl', generate_helpers.make_networks())
    s.conditional = generate_helpers.write_snapshot(root / 'conditional.pkl', generate_helpers.make_networks(c_dim=2))
    s.model = str(root / 'model.pt')
    export.save_weights_only(export.load_network(s.snapshot), s.model)
    s.data = write_image_folder(root / 'data', num_images=4, resolution=16)
    s.detectors = metrics_helpers.write_detector_dir(root / 'detectors')
    result = CliRunner().invoke(train.main, [f'--outdir={root / "runs"}', f'--data={s.data}', *TINY_ARGS, '--kimg=0.004'])
    assert result.exit_code == 0, result.output
    s.run = str(root / 'runs' / os.listdir(root / 'runs')[0])
    s.cache = str(root / 'cache')
    return s

#----------------------------------------------------------------------------
# The corpus.

NOT_IMAGE = b'this is a text file, not an image\n'
NAMES = bad.image_names()

GENERATE = [
    case('generate-network-missing', 'generate', lambda c: gen(c, network=c.tmp / 'missing.pkl'), '{tmp}/missing.pkl'),
    case('generate-network-garbage', 'generate', lambda c: gen(c, network=bad.garbage(c.tmp / 'garbage.pkl')),
         '{tmp}/garbage.pkl'),
    case('generate-network-truncated', 'generate',
         lambda c: gen(c, network=bad.truncated_copy(c.s.snapshot, c.tmp / 'half.pkl')), '{tmp}/half.pkl'),
    case('generate-network-pickle-of-a-list', 'generate',
         lambda c: gen(c, network=bad.pickle_file(c.tmp / 'list.pkl', [1, 2, 3])), '{tmp}/list.pkl', 'not a dict'),
    case('generate-network-without-g-ema', 'generate',
         lambda c: gen(c, network=bad.pickle_file(c.tmp / 'empty.pkl', dict(G=None))), '{tmp}/empty.pkl', 'G_ema'),
    case('generate-network-tensorflow-pickle', 'generate',
         lambda c: gen(c, network=bad.tensorflow_pickle(c.tmp / 'tf.pkl')), 'TensorFlow'),
    case('generate-malicious-system', 'generate',
         lambda c: gen(c, network=evil_pkl(c, evil.system_payload(c.marker))), f'refusing to load {SYSTEM}',
         '{tmp}/evil.pkl'),
    case('generate-malicious-storage', 'generate',
         lambda c: gen(c, network=evil_pkl(c, evil.storage_payload(c.marker))), 'a tensor storage', '{tmp}/evil.pkl'),
    case('generate-malicious-model-pt', 'generate',
         lambda c: gen(c, network=bad.malicious_model(c.tmp / 'evil.pt', evil.open_payload(c.marker))),
         '{tmp}/evil.pt', 'refusing to load'),
    case('generate-model-pt-foreign-torch-file', 'generate',
         lambda c: gen(c, network=bad.weights_only_file(c.tmp / 'foreign.pt', dict(weights=torch.ones(3)))),
         '{tmp}/foreign.pt', 'not a squeezegan-weights-only network file'),
    case('generate-model-pt-wrong-shapes', 'generate',
         lambda c: gen(c, network=bad.edited_model(c.s.model, c.tmp / 'edited.pt', bad.shrink_first_tensor)),
         '{tmp}/edited.pt', 'cannot rebuild G_ema'),
    case('generate-trunc-nan', 'generate', lambda c: gen(c, '--trunc=nan'), '--trunc', 'finite'),
    case('generate-trunc-inf', 'generate', lambda c: gen(c, '--trunc=inf'), '--trunc', 'finite'),
    case('generate-seeds-garbage', 'generate', lambda c: gen(c, '--seeds=abc'), '--seeds', "'abc'"),
    case('generate-seeds-backwards', 'generate', lambda c: gen(c, '--seeds=5-1'), '--seeds', 'backwards'),
    case('generate-class-for-unconditional', 'generate', lambda c: gen(c, '--class=1'), '--class', 'unconditional'),
    case('generate-outdir-is-a-file', 'generate',
         lambda c: gen(c, f'--outdir={bad.write_bytes(c.tmp / "out", b"keep me")}'), '--outdir', '{tmp}/out'),
    case('generate-outdir-under-a-file', 'generate',
         lambda c: gen(c, f'--outdir={bad.write_bytes(c.tmp / "file", b"keep me")}/out'), '--outdir', '{tmp}/file'),
    case('generate-projected-w-not-npz', 'generate', lambda c: projected(c, lambda path, G: bad.garbage(path)), '--projected-w',
         'projected_w.npz'),
    case('generate-projected-w-nan', 'generate', lambda c: projected(c, nan_ws), '--projected-w', 'nan'),
    case('generate-projected-w-strings', 'generate', lambda c: projected(c, bad.string_ws), '--projected-w',
         'w holds <U1 values; expected numbers'),
    case('generate-projected-w-objects', 'generate', lambda c: projected(c, bad.object_ws), '--projected-w',
         'projected_w.npz'),
    case('generate-styles-out-of-range', 'generate', lambda c: style_mixing(c, '--styles=99'), '--styles', '99'),
    case('generate-existing-image-without-overwrite', 'generate',
         lambda c: bad.write_bytes(c.tmp / 'out' / 'seed0000.png', b'earlier') and gen(c),
         '{tmp}/out/seed0000.png', '--overwrite'),
    case('generate-full-disk', 'generate', lambda c: c.fill_disk(1) or gen(c, '--seeds=0-2'),
         'cannot write {tmp}/out/seed0001.png: the disk is full', may_create=('out',)),
    case('generate-read-only-place', 'generate', lambda c: c.read_only() or gen(c, '--grid'),
         '{tmp}/out/grid.png', 'read-only', may_create=('out',)),
    case('generate-device-cuda-without-gpu', 'generate', lambda c: gen(c, '--device=cuda'), '--device',
         skip=(not NO_CUDA, 'needs a machine without CUDA')),
]

METRICS = [
    case('metrics-malicious-open', 'calc_metrics', lambda c: met(c, network=evil_pkl(c, evil.open_payload(c.marker))),
         'refusing to load io.open', '{tmp}/evil.pkl'),
    case('metrics-malicious-popen', 'calc_metrics',
         lambda c: met(c, network=evil_pkl(c, evil.popen_payload(c.marker))), 'subprocess.Popen', '{tmp}/evil.pkl'),
    case('metrics-malicious-model-pt', 'calc_metrics',
         lambda c: met(c, network=bad.malicious_model(c.tmp / 'evil.pt', evil.system_payload(c.marker))),
         f'refusing to load {SYSTEM}', '{tmp}/evil.pt'),
    case('metrics-unknown-metric', 'calc_metrics', lambda c: met(c, '--metrics=fid_nope'), '--metrics', 'fid_nope'),
    case('metrics-gpus-zero', 'calc_metrics', lambda c: met(c, '--gpus=0'), '--gpus'),
    case('metrics-gpus-two-without-cuda', 'calc_metrics', lambda c: met(c, '--gpus=2', '--device=cuda'), '--gpus',
         '--device=cpu', skip=(not NO_CUDA, 'needs a machine without CUDA')),
    case('metrics-detector-dir-missing', 'calc_metrics', lambda c: met(c, f'--detector-dir={c.tmp / "nowhere"}'),
         '--detector-dir', '{tmp}/nowhere'),
    case('metrics-data-missing', 'calc_metrics', lambda c: met(c, f'--data={c.tmp / "missing"}'), '{tmp}/missing'),
    case('metrics-data-of-another-resolution', 'calc_metrics',
         lambda c: met(c, f'--data={write_image_folder(c.tmp / "data8", resolution=8)}'), 'img00000.png', '8x8'),
    case('metrics-unlabelled-data-for-conditional-network', 'calc_metrics',
         lambda c: met(c, network=c.s.conditional), 'label'),
    case('metrics-recorded-dataset-missing', 'calc_metrics', lambda c: without('--data', met(c)), 'data.zip', '--data'),
    case('metrics-training-options-malformed', 'calc_metrics',
         lambda c: [f'--network={run_with_options_file(c, b"{oops")}', '--device=cpu'],
         '{tmp}/run/training_options.json'),
    case('metrics-full-disk-at-the-metric-line', 'calc_metrics', stand_in_run,
         'cannot write {tmp}/run/metric-fid1k_full.jsonl: the disk is full'),
    case('metrics-model-pt-names-logging-basicConfig', 'calc_metrics',
         lambda c: bad.model_naming(c, 'logging.basicConfig'), '{tmp}/evil.pt',
         "training_set_kwargs.class_name is 'logging.basicConfig'", 'accepted: training.dataset.ImageFolderDataset'),
    case('metrics-model-pt-names-os-system', 'calc_metrics', lambda c: bad.model_naming(c, 'os.system'),
         '{tmp}/evil.pt', "'os.system'", 'accepted: training.dataset.ImageFolderDataset'),
    case('metrics-pickle-names-logging-basicConfig', 'calc_metrics',
         lambda c: bad.pickle_naming(c, 'logging.basicConfig'), '{tmp}/evil.pkl', "'logging.basicConfig'", '--data'),
    case('metrics-pickle-names-os-system', 'calc_metrics', lambda c: bad.pickle_naming(c, 'os.system'),
         '{tmp}/evil.pkl', "'os.system'", '--data'),
    case('metrics-training-options-name-logging-basicConfig', 'calc_metrics',
         lambda c: bad.options_naming(c, 'logging.basicConfig'), '{tmp}/run/training_options.json',
         "training_set_kwargs.class_name is 'logging.basicConfig'"),
    case('metrics-training-options-name-os-system', 'calc_metrics', lambda c: bad.options_naming(c, 'os.system'),
         '{tmp}/run/training_options.json', "'os.system'"),
]

TRAIN_DATA = [
    case('train-data-missing', 'train', lambda c: tr(c, data=c.tmp / 'missing'), '--data', '{tmp}/missing'),
    case('train-data-text-file', 'train', lambda c: tr(c, data=bad.write_bytes(c.tmp / 'data.txt', NOT_IMAGE)),
         '{tmp}/data.txt'),
    case('train-data-empty-folder', 'train', lambda c: (c.tmp / 'data').mkdir() or tr(c, data=c.tmp / 'data'),
         '{tmp}/data', 'no images'),
    case('train-data-zip-not-zip', 'train', lambda c: tr(c, data=bad.garbage(c.tmp / 'data.zip')), '{tmp}/data.zip',
         'zip'),
    case('train-data-zip-member-not-an-image', 'train',
         lambda c: tr(c, data=bad.image_zip(c.tmp / 'data.zip', {NAMES[1]: NOT_IMAGE})), 'data.zip', NAMES[1]),
    case('train-data-zip-member-cut-short', 'train',
         lambda c: tr(c, data=bad.image_zip(c.tmp / 'data.zip', {NAMES[1]: bad.cut_pixels(bad.png_bytes())})),
         'data.zip', NAMES[1], may_create=('runs',)),
    case('train-data-png-cut-short', 'train',
         lambda c: tr(c, data=bad.image_folder(c.tmp / 'data', replace={NAMES[1]: bad.cut_pixels(bad.png_bytes())})),
         NAMES[1], may_create=('runs',)),
    case('train-data-file-not-an-image', 'train',
         lambda c: tr(c, data=bad.image_folder(c.tmp / 'data', replace={NAMES[3]: NOT_IMAGE})), NAMES[3]),
    case('train-data-image-of-another-size', 'train',
         lambda c: tr(c, data=bad.image_folder(c.tmp / 'data', replace={NAMES[2]: bad.png_bytes(8)})), NAMES[2]),
    case('train-data-not-a-power-of-two', 'train',
         lambda c: tr(c, data=bad.image_folder(c.tmp / 'data', replace={n: bad.png_bytes(12) for n in NAMES})),
         'power-of-two'),
    case('train-data-rgba', 'train',
         lambda c: tr(c, data=bad.image_folder(c.tmp / 'data', replace={n: bad.png_bytes(mode='RGBA') for n in NAMES})),
         NAMES[0], 'channel'),
    case('train-data-gray-among-rgb', 'train',
         lambda c: tr(c, data=bad.image_folder(c.tmp / 'data', replace={NAMES[1]: bad.png_bytes(mode='L')})), NAMES[1]),
    case('train-data-16-bit-png', 'train',
         lambda c: tr(c, data=bad.image_folder(c.tmp / 'data', replace={n: bad.png_bytes(mode='I;16') for n in NAMES})),
         NAMES[0]),
    case('train-labels-malformed-without-cond', 'train', lambda c: dry(c, data=labelled(c, b'{"labels": [')),
         'dataset.json'),
    case('train-cond-without-labels', 'train', lambda c: dry(c, '--cond'), '--cond'),
    case('train-cond-labels-malformed', 'train', lambda c: dry(c, '--cond', data=labelled(c, b'{"labels": [')),
         'dataset.json'),
    case('train-cond-label-missing', 'train', lambda c: dry(c, '--cond', data=labelled(c, bad.labels_for(NAMES[:3]))),
         'dataset.json', NAMES[3]),
    case('train-cond-label-negative', 'train', lambda c: dry(c, '--cond', data=labelled(c, bad.labels_for(NAMES, -1))),
         'dataset.json', 'is -1; accepted: a class index in [0, 1000000)'),
    case('train-glead-lpips-missing', 'train', lambda c: bad.lpips_dir(c, damage=os.remove), '--reg-type=glead',
         'alexnet-owt-7be5be79.pth'),
    case('train-glead-lpips-garbage', 'train', lambda c: bad.lpips_dir(c, damage=bad.garbage), '--reg-type=glead',
         'alexnet-owt-7be5be79.pth: not a readable weights-only torch file'),
    case('train-glead-lpips-truncated', 'train',
         lambda c: bad.lpips_dir(c, damage=lambda path: bad.truncated_copy(path, path)), '--reg-type=glead',
         'alexnet-owt-7be5be79.pth: not a readable weights-only torch file'),
    case('train-glead-lpips-carries-code', 'train',
         lambda c: bad.lpips_dir(c, damage=lambda path: torch.save({'features.0.weight': evil.open_payload(c.marker)}, path)),
         '--reg-type=glead', 'alexnet-owt-7be5be79.pth'),
    case('train-cbase-leaves-no-channels', 'train', lambda c: dry(c, '--cbase=8'), '--cbase=8',
         'the 16x16 layers would have no channels'),
    case('train-cond-label-nan', 'train', lambda c: dry(c, '--cond', data=labelled(c, bad.labels_for(NAMES, [float('nan')]))),
         'dataset.json', 'is [nan]; accepted: a class index in [0, 1000000) or a list of finite numbers'),
    case('train-cond-label-huge-class', 'train', lambda c: dry(c, '--cond', data=labelled(c, bad.labels_for(NAMES, 10 ** 12))),
         'dataset.json', 'is 1000000000000; accepted: a class index in [0, 1000000)'),
    case('train-cond-label-string', 'train', lambda c: dry(c, '--cond', data=labelled(c, bad.labels_for(NAMES, 'cat'))),
         'dataset.json'),
    case('train-cond-label-names-missing-file', 'train',
         lambda c: dry(c, '--cond', data=labelled(c, bad.labels_for(NAMES + ['img99999.png']))), 'img99999.png'),
]

TRAIN_FLAGS = [
    case('train-cfg-unknown', 'train', lambda c: dry(c, '--cfg=nosuch'), '--cfg=nosuch'),
    case('train-cfg-malformed-json', 'train',
         lambda c: dry(c, f'--cfg={bad.write_bytes(c.tmp / "mine.json", b"{{kimg: ")}'), '--cfg=', 'mine.json'),
    case('train-cfg-json-missing-keys', 'train',
         lambda c: dry(c, f'--cfg={bad.write_bytes(c.tmp / "mine.json", b"{}")}'), 'mine.json', 'missing'),
    case('train-metrics-unknown', 'train', lambda c: dry(c, '--metrics=fid_nope'), '--metrics=fid_nope'),
    case('train-kimg-nan', 'train', lambda c: dry(c, '--kimg=nan'), '--kimg'),
    case('train-kimg-zero', 'train', lambda c: dry(c, '--kimg=0'), '--kimg'),
    case('train-tick-nan', 'train', lambda c: dry(c, '--tick=nan'), '--tick'),
    case('train-gamma-nan', 'train', lambda c: dry(c, '--gamma=nan'), '--gamma'),
    case('train-gamma-negative', 'train', lambda c: dry(c, '--gamma=-1'), '--gamma'),
    case('train-batch-zero', 'train', lambda c: dry(c, '--batch=0'), '--batch'),
    case('train-batch-gpu-not-dividing', 'train', lambda c: dry(c, '--batch-gpu=3'), '--batch-gpu'),
    case('train-squeeze-ratio-3', 'train', lambda c: dry(c, '--g-arch=squeeze', '--squeeze-ratio=3'),
         '--squeeze-ratio', 'accepted'),
    case('train-squeeze-ratio-0', 'train', lambda c: dry(c, '--g-arch=squeeze', '--squeeze-ratio=0'),
         '--squeeze-ratio=0: must be a finite number >= 1'),
    case('train-squeeze-ratio-nan', 'train', lambda c: dry(c, '--g-arch=squeeze', '--squeeze-ratio=nan'),
         '--squeeze-ratio=nan: must be a finite number >= 1'),
    case('train-squeeze-ratio-64', 'train', lambda c: dry(c, '--g-arch=squeeze', '--squeeze-ratio=64'),
         '--squeeze-ratio', 'accepted'),
    case('train-squeeze-ratio-without-squeeze', 'train', lambda c: dry(c, '--squeeze-ratio=8'), '--squeeze-ratio'),
    case('train-gpus-three', 'train', lambda c: dry(c, '--gpus=3'), '--gpus'),
    case('train-gpus-zero', 'train', lambda c: dry(c, '--gpus=0'), '--gpus'),
    case('train-device-cuda-without-gpu', 'train', lambda c: dry(c, '--device=cuda'), '--device',
         skip=(not NO_CUDA, 'needs a machine without CUDA')),
    case('train-outdir-is-a-file', 'train',
         lambda c: dry(c, f'--outdir={bad.write_bytes(c.tmp / "runs", b"keep me")}'), '--outdir', '{tmp}/runs'),
    case('train-outdir-under-a-file', 'train',
         lambda c: dry(c, f'--outdir={bad.write_bytes(c.tmp / "file", b"keep me")}/runs'), '--outdir', '{tmp}/file'),
    case('train-aug-fixed-without-p', 'train', lambda c: dry(c, '--aug=fixed'), '--p'),
    case('train-subset-zero', 'train', lambda c: dry(c, '--subset=0'), '--subset'),
]

TRAIN_RESUME = [
    case('train-resume-missing-file', 'train', lambda c: tr(c, f'--resume={c.tmp / "missing.pkl"}'),
         '--resume', '{tmp}/missing.pkl'),
    case('train-resume-garbage', 'train', lambda c: tr(c, f'--resume={bad.garbage(c.tmp / "garbage.pkl")}'),
         '{tmp}/garbage.pkl',
         may_create=('runs',)),
    case('train-resume-truncated-snapshot', 'train',
         lambda c: tr(c, f'--resume={bad.truncated_copy(c.s.run + "/network-snapshot-000000.pkl", c.tmp / "half.pkl")}'),
         '{tmp}/half.pkl',
         may_create=('runs',)),
    case('train-resume-latest-without-runs', 'train', lambda c: tr(c, '--resume=latest'), '--resume=latest'),
    case('train-resume-latest-with-only-a-killed-write', 'train',
         lambda c: bad.write_bytes(c.tmp / 'runs' / '00000-killed' / 'training_options.json', b'{}')
         and bad.write_bytes(c.tmp / 'runs' / '00000-killed' / '.network-snapshot-000000.pkl.squeezegan-abc12_yz.tmp', b'half')
         and tr(c, '--resume=latest'), '--resume=latest',
         may_remove=(os.path.join('runs', '00000-killed', '.network-snapshot-000000.pkl.squeezegan-abc12_yz.tmp'),)),
    case('train-resume-tampered-state', 'train', lambda c: tr(c, f'--resume={tampered_run(c)}'),
         'refusing to load io.open', 'network-snapshot-000000.resume.pt',
         may_create=('runs',)),
    case('train-resume-latest-tampered-state', 'train', lambda c: tampered_run(c) and tr(c, '--resume=latest'),
         'refusing to load io.open', 'network-snapshot-000000.resume.pt',
         may_create=('runs',)),
    case('train-resume-state-garbage', 'train',
         lambda c: tr(c, f'--resume={garbage_resume_state(c)}'), 'network-snapshot-000000.resume.pt',
         may_create=('runs',)),
    case('train-resume-half-replaced-pair', 'train', lambda c: tr(c, f'--resume={half_replaced_run(c)}'),
         'another version of the pickle',
         may_create=('runs',)),
    case('train-resume-latest-half-replaced-only-pair', 'train',
         lambda c: half_replaced_run(c) and tr(c, '--resume=latest'), '--resume=latest'),
    case('train-resume-other-architecture', 'train',
         lambda c: tr(c, '--g-arch=squeeze', f'--resume={c.s.run}/network-snapshot-000000.pkl'), '--transfer',
         may_create=('runs',)),
    case('train-resume-malicious-system', 'train',
         lambda c: tr(c, f'--resume={evil_pkl(c, evil.system_payload(c.marker))}'), f'refusing to load {SYSTEM}',
         '{tmp}/evil.pkl',
         may_create=('runs',)),
    case('train-resume-malicious-embedded-source', 'train',
         lambda c: tr(c, f'--resume={evil_pkl(c, evil.embedded_source_payload(c.marker))}'), 'Widget',
         '{tmp}/evil.pkl',
         may_create=('runs',)),
    case('train-resume-malicious-model-pt', 'train',
         lambda c: tr(c, f'--resume={bad.malicious_model(c.tmp / "evil.pt", evil.open_payload(c.marker))}'),
         'refusing to load', '{tmp}/evil.pt',
         may_create=('runs',)),
    case('train-full-disk-at-the-first-write', 'train', lambda c: c.fill_disk(0) or tr(c), 'the disk is full',
         may_create=('runs',)),
    case('train-full-disk-at-the-snapshot', 'train', lambda c: c.fill_disk(0, 'network-snapshot') or tr(c),
         'network-snapshot-000000.pkl: the disk is full', may_create=('runs',)),
    case('train-read-only-outdir', 'train', lambda c: c.read_only() or tr(c), 'read-only', may_create=('runs',)),
    case('train-two-processes-tampered-state', 'train', lambda c: tr(c, '--gpus=2', f'--resume={tampered_run(c)}'),
         'refusing to load io.open', 'network-snapshot-000000.resume.pt', way='process'),
]


DATASET = [
    case('dataset-source-missing', 'dataset_tool', lambda c: dt(c, c.tmp / 'missing'), '--source', '{tmp}/missing'),
    case('dataset-source-empty-folder', 'dataset_tool', lambda c: (c.tmp / 'src').mkdir() or dt(c, c.tmp / 'src'),
         '{tmp}/src', 'no images'),
    case('dataset-source-text-file', 'dataset_tool', lambda c: dt(c, bad.write_bytes(c.tmp / 'notes.txt', NOT_IMAGE)),
         '{tmp}/notes.txt'),
    case('dataset-source-zip-not-zip', 'dataset_tool', lambda c: dt(c, bad.garbage(c.tmp / 'src.zip')),
         '{tmp}/src.zip', 'zip'),
    case('dataset-source-zip-member-not-an-image', 'dataset_tool',
         lambda c: dt(c, bad.image_zip(c.tmp / 'src.zip', {NAMES[1]: NOT_IMAGE})), NAMES[1]),
    case('dataset-source-png-cut-short', 'dataset_tool',
         lambda c: dt(c, bad.image_folder(c.tmp / 'src', replace={NAMES[1]: bad.cut_pixels(bad.png_bytes())})),
         NAMES[1]),
    case('dataset-source-mixed-sizes', 'dataset_tool',
         lambda c: dt(c, bad.image_folder(c.tmp / 'src', replace={NAMES[2]: bad.png_bytes(8)})), NAMES[2]),
    case('dataset-source-not-square', 'dataset_tool',
         lambda c: dt(c, bad.image_folder(c.tmp / 'src', replace={n: bad.png_bytes((16, 12)) for n in NAMES})),
         '16x12'),
    case('dataset-source-mixed-channels', 'dataset_tool',
         lambda c: dt(c, bad.image_folder(c.tmp / 'src', replace={NAMES[1]: bad.png_bytes(mode='L')})), '--channels'),
    case('dataset-channels-two', 'dataset_tool', lambda c: dt(c, c.s.data, '--channels=2'), '--channels'),
    case('dataset-labels-malformed', 'dataset_tool',
         lambda c: dt(c, bad.image_folder(c.tmp / 'src', labels=b'{"labels": [')), 'dataset.json'),
    case('dataset-labels-name-a-missing-file', 'dataset_tool',
         lambda c: dt(c, bad.image_folder(c.tmp / 'src', labels=bad.labels_for(NAMES + ['img99999.png']))),
         'dataset.json', 'img99999.png'),
    case('dataset-labels-miss-an-image', 'dataset_tool',
         lambda c: dt(c, bad.image_folder(c.tmp / 'src', labels=bad.labels_for(NAMES[:3]))), 'dataset.json', NAMES[3]),
    case('dataset-label-negative', 'dataset_tool',
         lambda c: dt(c, bad.image_folder(c.tmp / 'src', labels=bad.labels_for(NAMES, -1))), 'label of', '-1'),
    case('dataset-label-string', 'dataset_tool',
         lambda c: dt(c, bad.image_folder(c.tmp / 'src', labels=bad.labels_for(NAMES, 'cat'))), 'label of', 'cat'),
    case('dataset-dest-is-a-file', 'dataset_tool',
         lambda c: dt(c, c.s.data, dest=bad.write_bytes(c.tmp / 'dest', b'keep me')), '--dest', '{tmp}/dest'),
    case('dataset-dest-under-a-file', 'dataset_tool',
         lambda c: dt(c, c.s.data, dest=bad.write_bytes(c.tmp / 'file', b'keep me') + '/out.zip'), '--dest',
         '{tmp}/file'),
    case('dataset-dest-inside-the-source', 'dataset_tool',
         lambda c: dt(c, bad.image_folder(c.tmp / 'src'), dest=c.tmp / 'src' / 'out'), '--dest', '--source'),
    case('dataset-dest-exists-without-overwrite', 'dataset_tool',
         lambda c: dt(c, c.s.data, dest=bad.write_bytes(c.tmp / 'out.zip', b'earlier dataset')), '{tmp}/out.zip',
         '--overwrite'),
    case('dataset-width-not-a-power-of-two', 'dataset_tool', lambda c: dt(c, c.s.data, '--width=12'), '12'),
    case('dataset-cifar-malicious-batch', 'dataset_tool',
         lambda c: dt(c, bad.cifar_tarball(c.tmp / 'cifar-10-python.tar.gz',
                                           dict(data=evil.system_payload(c.marker), labels=[0]))),
         'refusing to load', 'data_batch_1'),
    case('dataset-mnist-cut-short', 'dataset_tool', lambda c: dt(c, mnist_cut_short(c)), 'train-images-idx3-ubyte',
         'truncated'),
    case('dataset-full-disk', 'dataset_tool',
         lambda c: dt(c, c.s.data, '--overwrite', dest=bad.write_bytes(c.tmp / 'out.zip', b'earlier dataset')),
         '{tmp}/out.zip', 'the disk is full', way='full-disk:0'),
    case('dataset-read-only-place', 'dataset_tool', lambda c: c.read_only() or dt(c, c.s.data), '{tmp}/out.zip',
         'read-only'),
]

CONVERTERS = [
    case('export-network-truncated', 'export',
         lambda c: export_args(c, network=bad.truncated_copy(c.s.snapshot, c.tmp / 'half.pkl')), '{tmp}/half.pkl'),
    case('export-malicious-embedded-source', 'export',
         lambda c: export_args(c, network=evil_pkl(c, evil.embedded_source_payload(c.marker))), 'Widget',
         '{tmp}/evil.pkl'),
    case('export-malicious-persistent-os-system', 'export',
         lambda c: export_args(c, network=evil_pkl(c, evil.persistent_payload('os', 'system'))), "'system'",
         '{tmp}/evil.pkl'),
    case('export-dest-is-a-folder', 'export', lambda c: export_args(c, dest=c.tmp), '--dest', 'folder'),
    case('export-dest-under-a-file', 'export',
         lambda c: export_args(c, dest=bad.write_bytes(c.tmp / 'file', b'keep me') + '/model.pt'), '--dest',
         '{tmp}/file'),
    case('export-dest-exists-without-overwrite', 'export',
         lambda c: export_args(c, dest=bad.write_bytes(c.tmp / 'model.pt', b'earlier model')), '--dest', '--overwrite'),
    case('export-dest-is-the-source', 'export',
         lambda c: export_args(c, bad.copy(c.s.snapshot, c.tmp / 'net.pkl'), c.tmp / 'net.pkl', '--overwrite'),
         'is the source file'),
    case('export-full-disk', 'export',
         lambda c: c.fill_disk() or export_args(c, None, bad.write_bytes(c.tmp / 'model.pt', b'earlier'), '--overwrite'),
         'cannot write {tmp}/model.pt: the disk is full'),
    case('legacy-source-garbage', 'legacy', lambda c: legacy_args(c, source=bad.garbage(c.tmp / 'garbage.pkl')),
         '{tmp}/garbage.pkl'),
    case('legacy-tensorflow-pickle', 'legacy', lambda c: legacy_args(c, source=bad.tensorflow_pickle(c.tmp / 'tf.pkl')),
         'TensorFlow'),
    case('legacy-malicious-storage', 'legacy',
         lambda c: legacy_args(c, source=evil_pkl(c, evil.storage_payload(c.marker))), 'a tensor storage',
         '{tmp}/evil.pkl'),
    case('legacy-malicious-popen', 'legacy', lambda c: legacy_args(c, source=evil_pkl(c, evil.popen_payload(c.marker))),
         'subprocess.Popen', '{tmp}/evil.pkl'),
    case('legacy-dest-exists-without-overwrite', 'legacy',
         lambda c: legacy_args(c, dest=bad.write_bytes(c.tmp / 'ours.pkl', b'earlier')), '--dest', '--overwrite'),
    case('legacy-full-disk', 'legacy',
         lambda c: c.fill_disk() or legacy_args(c, None, bad.write_bytes(c.tmp / 'ours.pkl', b'earlier'), '--overwrite'),
         'cannot write {tmp}/ours.pkl: the disk is full'),
]

PROJECTOR = [
    case('projector-target-missing', 'projector', lambda c: proj(c, target=c.tmp / 'nowhere.png'), '{tmp}/nowhere.png'),
    case('projector-target-not-an-image', 'projector',
         lambda c: proj(c, target=bad.write_bytes(c.tmp / 'target.png', NOT_IMAGE)), '{tmp}/target.png'),
    case('projector-network-garbage', 'projector', lambda c: proj(c, network=bad.garbage(c.tmp / 'garbage.pkl')),
         '{tmp}/garbage.pkl'),
    case('projector-malicious-network', 'projector', lambda c: proj(c, network=evil_pkl(c, evil.system_payload(c.marker))),
         f'refusing to load {SYSTEM}'),
    case('projector-conditional-network', 'projector', lambda c: proj(c, network=c.s.conditional), 'conditional'),
    case('projector-steps-zero', 'projector', lambda c: proj(c, '--num-steps=0'), '--num-steps'),
    case('projector-detector-dir-is-a-file', 'projector',
         lambda c: proj(c, f'--detector-dir={bad.write_bytes(c.tmp / "file", b"x")}'), '--detector-dir'),
    case('projector-outdir-under-a-file', 'projector',
         lambda c: proj(c, f'--outdir={bad.write_bytes(c.tmp / "file", b"keep me")}/proj'), '--outdir'),
]

CORPUS = GENERATE + METRICS + TRAIN_DATA + TRAIN_FLAGS + TRAIN_RESUME + DATASET + CONVERTERS + PROJECTOR

#----------------------------------------------------------------------------
# Running a case.


@pytest.fixture
def context(tmp_path, shared, monkeypatch):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', shared.cache)
    monkeypatch.setenv(metrics_helpers.detectors.DETECTOR_DIR_ENV, shared.detectors)
    folder = tmp_path / 'case'
    folder.mkdir()
    return Context(folder, shared, monkeypatch)


def run_tool(tool, args, way='cli'):
    """(exit code, everything the tool printed)."""
    module_name, attribute, entry = TOOLS[tool]
    args = [str(arg) for arg in args]
    if way == 'cli':
        result = CliRunner().invoke(getattr(importlib.import_module(module_name), attribute), args)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            return 1, result.output + 'Traceback (in-process):\n' + ''.join(traceback.format_exception(*result.exc_info))
        return result.exit_code, result.output
    entry = [os.path.join(evil.REPO_ROOT, entry[0])] if entry[0].endswith('.py') else entry
    if way == 'process':
        result = evil.run_entry_point([*entry, *args], cwd=evil.REPO_ROOT)
    else:
        _, allowed, name_part = (way + ':').split(':')[:3]
        result = evil.run_with_full_disk([*entry, *args], cwd=evil.REPO_ROOT, allowed_files=int(allowed),
                                         name_part=name_part)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize('case_', CORPUS)
def test_bad_input_is_refused_in_one_line(case_, context):
    c = context
    args = case_.setup(c)
    before = bad.file_state(c.tmp)
    exit_code, output = run_tool(case_.tool, args, case_.way)
    tail = '\n'.join(output.splitlines()[-15:])
    assert exit_code != 0, f'exit code 0:\n{tail}'
    assert 'Traceback' not in output, output[-4000:]
    errors = [line for line in output.splitlines() if line.startswith('Error:')]
    assert len(errors) == 1, f'{len(errors)} Error lines:\n{tail}'
    for fragment in case_.expect:
        assert fragment.format(tmp=c.tmp) in errors[0], f'{fragment.format(tmp=c.tmp)!r} not in {errors[0]!r}'
    assert not os.path.exists(c.marker), 'the payload ran'
    assert bad.changes(before, bad.file_state(c.tmp), case_.may_create, case_.may_remove) == []


@pytest.mark.parametrize('replace, flags, report, mode', [
    ({name: bad.png_bytes(mode='I;16') for name in NAMES}, [], 'converted: 4 16-bit images to 8 bits', 'L'),
    ({NAMES[1]: bad.png_bytes(mode='L')}, ['--channels=3'], 'converted: 1 grayscale images to RGB', 'RGB'),
])
def test_dataset_tool_converts_mixed_sources_by_its_rule_and_says_so(context, replace, flags, report, mode):
    c = context
    exit_code, output = run_tool('dataset_tool', dt(c, bad.image_folder(c.tmp / 'src', replace=replace), *flags))
    assert exit_code == 0 and report in output, output
    with zipfile.ZipFile(c.tmp / 'out.zip') as archive:
        names = sorted(n for n in archive.namelist() if n.endswith('.png'))
        images = [PIL.Image.open(archive.open(name)) for name in names]
        assert len(images) == 4 and {image.mode for image in images} == {mode}


def test_corpus_ids_are_unique():
    ids = [param.id for param in CORPUS]
    assert len(ids) == len(set(ids))
