"""The schema a resume state (.resume.pt) must meet before anything is restored from it."""

# A resume state that loads safely (weights_only) can still be wrong: edited, written by another version, or
# damaged. check_resume_state walks it once against what this run will do with it, and names the first field
# that does not fit; restore() uses nothing before it passed. Counters must be finite non-negative integers
# (a NaN image count would make the loop's end never come), tensors must have the shapes of the networks
# and optimizers they go into, RNG states the type and size their generators take.

import math
import numbers

import torch


class StateError(ValueError):
    """The first field of a resume state that does not fit; the message is `field: what is wrong`."""


PROGRESS_KEYS = ('cur_nimg', 'cur_tick', 'batch_idx', 'tick_start_nimg')
MT19937_WORDS = 624  # numpy's RandomState key length.


def check_resume_state(state, optimizers, num_rng_bytes=None):
    """Raise StateError naming the first bad field of `state`; `optimizers` maps names to this run's optimizers."""
    num_rng_bytes = torch.get_rng_state().numel() if num_rng_bytes is None else num_rng_bytes
    for key in ('progress', 'optimizers', 'loss', 'ada', 'rng', 'options'):
        if key not in state:
            raise StateError(f'{key}: missing')
    _check_progress(state['progress'])
    _check_dict('options', state['options'])
    _check_optimizers(state['optimizers'], optimizers)
    _check_loss('loss', state['loss'])
    if state['ada'] is not None:
        _check_ada(state['ada'])
    _check_list('rng', state['rng'], min_length=1)
    for index, rng in enumerate(state['rng']):
        _check_rng(f'rng[{index}]', rng, num_rng_bytes)
    ranks = state.get('ranks')
    if ranks is not None:
        _check_list('ranks', ranks, length=len(state['rng']))
        for index, rank in enumerate(ranks):
            _check_dict(f'ranks[{index}]', rank)
            if rank.get('loss') is not None:
                _check_loss(f'ranks[{index}].loss', rank['loss'])
            if rank.get('averages') is not None:
                _check_tensors(f'ranks[{index}].averages', rank['averages'])

#----------------------------------------------------------------------------

def _check_progress(progress):
    _check_dict('progress', progress)
    for key in PROGRESS_KEYS:
        if key not in progress:
            raise StateError(f'progress.{key}: missing')
        _check_count(f'progress.{key}', progress[key])
    if progress['tick_start_nimg'] > progress['cur_nimg']:
        raise StateError(f'progress.tick_start_nimg: {progress["tick_start_nimg"]} is past cur_nimg {progress["cur_nimg"]}')


def _check_optimizers(saved, optimizers):
    _check_dict('optimizers', saved)
    for name, opt in optimizers.items():
        if name not in saved:
            raise StateError(f'optimizers.{name}: missing')
        where = f'optimizers.{name}'
        state_dict = saved[name]
        _check_dict(where, state_dict)
        for key in ('state', 'param_groups'):
            if key not in state_dict:
                raise StateError(f'{where}.{key}: missing')
        params = [param for group in opt.param_groups for param in group['params']]
        _check_list(f'{where}.param_groups', state_dict['param_groups'], length=len(opt.param_groups))
        saved_ids = []
        for index, group in enumerate(state_dict['param_groups']):
            _check_dict(f'{where}.param_groups[{index}]', group)
            _check_list(f'{where}.param_groups[{index}].params', group.get('params'),
                        length=len(opt.param_groups[index]['params']))
            saved_ids += group['params']
        position = {param_id: i for i, param_id in enumerate(saved_ids)}
        _check_dict(f'{where}.state', state_dict['state'])
        for param_id, param_state in state_dict['state'].items():
            if param_id not in position:
                raise StateError(f'{where}.state[{param_id!r}]: names no parameter of the optimizer')
            param = params[position[param_id]]
            _check_dict(f'{where}.state[{param_id}]', param_state)
            for key, value in param_state.items():
                field = f'{where}.state[{param_id}].{key}'
                if not isinstance(value, torch.Tensor):
                    raise StateError(f'{field}: a {type(value).__name__}, expected a tensor')
                if value.ndim > 0 and tuple(value.shape) != tuple(param.shape):
                    raise StateError(f'{field}: shape {list(value.shape)}, but the parameter is {list(param.shape)}')
                if not bool(torch.isfinite(value.float()).all()):
                    raise StateError(f'{field}: holds NaN or infinite values')


def _check_loss(where, loss):
    _check_dict(where, loss)
    if 'pl_mean' not in loss:
        raise StateError(f'{where}.pl_mean: missing')
    _check_number(f'{where}.pl_mean', loss['pl_mean'])


def _check_ada(ada):
    _check_dict('ada', ada)
    for key in ('p', 'steps', 'sign_sum', 'sign_count'):
        if key not in ada:
            raise StateError(f'ada.{key}: missing')
    p = _check_number('ada.p', ada['p'])
    if not 0 <= p <= 1:
        raise StateError(f'ada.p: {p}, expected a probability in [0, 1]')
    _check_count('ada.steps', ada['steps'])
    _check_count('ada.sign_count', ada['sign_count'])
    _check_number('ada.sign_sum', ada['sign_sum'])


def _check_rng(where, rng, num_rng_bytes):
    _check_dict(where, rng)
    for key in ('torch', 'numpy'):
        if key not in rng:
            raise StateError(f'{where}.{key}: missing')
    for key in ('torch', 'cuda'):
        value = rng.get(key)
        if key == 'cuda' and value is None:
            continue
        if not isinstance(value, torch.Tensor) or value.dtype != torch.uint8 or value.ndim != 1:
            raise StateError(f'{where}.{key}: expected a 1-D uint8 tensor (a generator state)')
        if key == 'torch' and value.numel() != num_rng_bytes:
            raise StateError(f'{where}.torch: {value.numel()} bytes, a CPU generator state has {num_rng_bytes}')
    numpy_state = rng['numpy']
    if not isinstance(numpy_state, (tuple, list)) or len(numpy_state) != 5 or numpy_state[0] != 'MT19937':
        raise StateError(f'{where}.numpy: expected numpy\'s (\'MT19937\', key, pos, has_gauss, cached_gaussian)')
    key = numpy_state[1]
    if getattr(key, 'shape', None) is None or tuple(key.shape) != (MT19937_WORDS,):
        raise StateError(f'{where}.numpy: the key must hold {MT19937_WORDS} numbers')
    position = numpy_state[2]
    if not isinstance(position, numbers.Integral) or not 0 <= position <= MT19937_WORDS:
        raise StateError(f'{where}.numpy: position {position!r}, expected an integer in [0, {MT19937_WORDS}]')


def _check_tensors(where, tensors):
    _check_dict(where, tensors)
    for name, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise StateError(f'{where}[{name!r}]: a {type(value).__name__}, expected a tensor')

#----------------------------------------------------------------------------

def _check_dict(where, value):
    if not isinstance(value, dict):
        raise StateError(f'{where}: a {type(value).__name__}, expected a dict')


def _check_list(where, value, length=None, min_length=0):
    if not isinstance(value, (list, tuple)):
        raise StateError(f'{where}: a {type(value).__name__}, expected a list')
    if (length is not None and len(value) != length) or len(value) < min_length:
        expected = length if length is not None else f'at least {min_length}'
        raise StateError(f'{where}: {len(value)} entries, expected {expected}')


def _scalar(value):
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        return value.reshape([]).item()
    return value


def _check_number(where, value):
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise StateError(f'{where}: {value!r}, expected a number')
    if not math.isfinite(value):
        raise StateError(f'{where}: {value}, expected a finite number')
    return float(value)


def _check_count(where, value):
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise StateError(f'{where}: {value!r}, expected a whole number >= 0')
    if value < 0:
        raise StateError(f'{where}: {value}, expected a whole number >= 0')
    return int(value)
