"""Training presets: configs/<name>.json (or a JSON path) read, checked and completed for the data."""

# A preset holds every key of PRESET_KEYS, may hold those of OPTIONAL_PRESET_KEYS (absent: their option's
# preset_default) and a description, and nothing else, each checked by its option's rule in options.py;
# stylegan2-ada-pytorch's values for its names (auto, stylegan2, paper256/512/1024, cifar) and the squeeze
# paper's Table I (paper256, squeeze-cifar).
# config.py resolves the rest of a run's configuration on top of it.

import json
import os

import dnnlib
from training.cli import options
from training.cli.options import AUTO_KEYS, OPTIONAL_PRESET_KEYS, PRESET_DIR, PRESET_KEYS  # noqa: F401  (PRESET_DIR: the presets' folder)

# The data resolution a preset was tuned for; another resolution gets a warning (not an error) naming it.
PRESET_RESOLUTIONS = {'cifar': 32, 'squeeze-cifar': 32, 'paper256': 256, 'paper512': 512, 'paper1024': 1024,
                      'stylegan2': 1024, 'rpgan-cifar': 32, 'rpgan-paper256': 256}


class ConfigError(ValueError):
    """A bad option or an incompatible combination; the message is one line a user can act on."""


def check_preset_value(key, value, source):
    """ConfigError unless `value` meets option `key`'s rule (training/cli/options.py); `source` names where it came
    from, '--cfg=FILE: gamma'."""
    return options.check_value(key, value, source, ConfigError, for_preset=True)

#----------------------------------------------------------------------------
# Presets.

def list_presets():
    """Names of the presets in configs/ (a preset is configs/<name>.json)."""
    return sorted(os.path.splitext(f)[0] for f in os.listdir(PRESET_DIR) if f.endswith('.json'))


def load_preset(cfg):
    """(name, values) of a preset given by name or by path to a JSON file; values hold every PRESET_KEYS key."""
    if cfg.endswith('.json') or os.sep in cfg or '/' in cfg:
        path = cfg
        name = os.path.splitext(os.path.basename(cfg))[0]
    else:
        path = os.path.join(PRESET_DIR, f'{cfg}.json')
        name = cfg
        if not os.path.isfile(path):
            raise ConfigError(f'--cfg={cfg}: no such preset {os.path.relpath(path)}; accepted: {", ".join(list_presets())} '
                              f'or a path to a JSON file')
    if not os.path.isfile(path):
        raise ConfigError(f'--cfg={cfg}: file not found')
    try:
        with open(path, encoding='utf-8') as f:
            values = json.load(f)
    except (OSError, ValueError) as exc:
        raise ConfigError(f'--cfg={cfg}: not readable JSON ({str(exc).splitlines()[0]})') from None
    if not isinstance(values, dict):
        raise ConfigError(f'--cfg={cfg}: must hold a JSON object with keys {", ".join(PRESET_KEYS)}')
    values = {k: v for k, v in values.items() if k != 'description'}
    missing = [k for k in PRESET_KEYS if k not in values]
    unknown = [k for k in values if k not in PRESET_KEYS + OPTIONAL_PRESET_KEYS]
    if missing or unknown:
        what = f'missing {", ".join(missing)}' if missing else f'unknown key(s) {", ".join(unknown)}'
        raise ConfigError(f'--cfg={cfg}: {what}; a preset has exactly the keys {", ".join(PRESET_KEYS)} (+ description, '
                          f'and optionally {", ".join(OPTIONAL_PRESET_KEYS)})')
    for key in OPTIONAL_PRESET_KEYS:
        values.setdefault(key, options.BY_NAME[key].preset_default)
    for key in PRESET_KEYS + OPTIONAL_PRESET_KEYS:
        value = values[key]
        if value == 'auto':
            if key not in AUTO_KEYS:
                raise ConfigError(f'--cfg={cfg}: {key} cannot be "auto"; only {", ".join(AUTO_KEYS)} can')
            continue
        check_preset_value(key, value, f'--cfg={cfg}: {key}')
    return name, dnnlib.EasyDict(values)


def resolve_auto(spec, resolution, gpus):
    """Fill the "auto" values of a preset from the dataset resolution and GPU count (stylegan2-ada's --cfg=auto)."""
    spec = dnnlib.EasyDict(spec)
    auto = dnnlib.EasyDict(ref_gpus=gpus)
    auto.batch = max(min(gpus * min(4096 // resolution, 32), 64), gpus)  # Keeps per-GPU memory in check.
    auto.mbstd_group = min(auto.batch // gpus, 4)
    auto.fmaps = 1 if resolution >= 512 else 0.5
    auto.lrate = 0.002 if resolution >= 1024 else 0.0025
    auto.gamma = 0.0002 * resolution ** 2 / auto.batch  # Heuristic of the ADA paper.
    auto.ema_kimg = auto.batch * 10 / 32
    for key in AUTO_KEYS:
        if spec[key] == 'auto':
            spec[key] = auto[key]
    return spec
