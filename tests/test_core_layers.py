"""Imports point one way: plumbing, torch machinery, building blocks, the loop's parts, the loop, the command-line
layer, the entry points. Read from the source (every import statement, function-local ones too), so an arrow back up
fails here before anyone draws it."""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Lowest first; a module may import from its own layer and those below it, never from above.
LAYERS = (
    ('dnnlib',),
    ('torch_utils',),
    ('metrics', 'training.networks', 'training.dataset', 'training.augment'),
    ('training', 'training.loss', 'training.regularizers', 'training.legacy', 'training.export', 'training.transfer',
     'training.run'),
    ('training.training_loop',),
    ('training.cli',),
    ('train', 'generate', 'gen_video', 'calc_metrics', 'dataset_tool', 'projector'),
)
PACKAGES = ('dnnlib', 'torch_utils', 'metrics', 'training')


def layer_of(module):
    """Index in LAYERS of the longest prefix that names `module`'s group, or None for a module outside them."""
    best = None
    for index, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + '.')) and (best is None or len(name) > len(best[1])):
                best = (index, name)
    return None if best is None else best[0]


def _module_name(path):
    rel = os.path.relpath(path, ROOT)[:-len('.py')].replace(os.sep, '.')
    return rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def _is_module(name):
    base = os.path.join(ROOT, *name.split('.'))
    return os.path.isfile(base + '.py') or os.path.isfile(os.path.join(base, '__init__.py'))


def project_imports(path):
    """(line, module) of every import of a project module in the file at `path`."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), filename=path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from training import loss` imports the module training.loss; `from training.loss import X` its parent.
            names = [f'{node.module}.{alias.name}' if _is_module(f'{node.module}.{alias.name}') else node.module
                     for alias in node.names]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.split('.')[0] in PACKAGES]
    return found


def source_files():
    files = [os.path.join(ROOT, f'{name}.py') for name in LAYERS[-1] if os.path.isfile(os.path.join(ROOT, f'{name}.py'))]
    for package in PACKAGES:
        for folder, _dirs, names in os.walk(os.path.join(ROOT, package)):
            files += [os.path.join(folder, name) for name in names if name.endswith('.py')]
    return sorted(files)


def upward_in(path, module):
    """['file:line imports name (layer ... above ...)', ...] for the imports of `path` (module `module`) that point up."""
    here = layer_of(module)
    found = []
    for line, name in project_imports(path):
        there = layer_of(name)
        if here is not None and there is not None and there > here:
            found.append(f'{os.path.relpath(path, ROOT)}:{line} imports {name} '
                         f'(layer {LAYERS[there][0]!r} above {LAYERS[here][0]!r})')
    return found


def upward_imports():
    return [finding for path in source_files() for finding in upward_in(path, _module_name(path))]


def test_every_source_module_has_a_layer():
    assert [path for path in source_files() if layer_of(_module_name(path)) is None] == []


def test_no_import_points_up_a_layer():
    assert upward_imports() == []


def test_the_loop_and_its_parts_never_import_the_command_line_layer():
    below = [path for path in source_files() if layer_of(_module_name(path)) < layer_of('training.cli')]
    offenders = [f'{os.path.relpath(path, ROOT)}:{line}' for path in below for line, name in project_imports(path)
                 if name == 'training.cli' or name.startswith('training.cli.')]
    assert offenders == []


@pytest.mark.parametrize('source, upward', [
    ('from training.cli import config\n', True),
    ('def restore():\n    from training import training_loop  # A function-local import counts too.\n', True),
    ('import training.cli.options as table\n', True),
    ('from training.loss import NonFiniteLossError\n', False),
    ('from training.run import snapshot\nimport torch_utils.misc\n', False),
])
def test_the_check_sees_upward_imports_of_every_form(tmp_path, source, upward):
    """The checker itself, for a file of the loop's parts (training.run): upward imports are found in every form."""
    path = tmp_path / 'probe.py'
    path.write_text(source)
    assert bool(upward_in(str(path), 'training.run.probe')) == upward
