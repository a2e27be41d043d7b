"""Shared fixtures for the core tests: throwaway modules with persistent classes, and subprocess runners."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import uuid

import torch
from tests import limits

# A module that only exists in a temporary folder, so a fresh process cannot import it.
TOY_MODULE_SOURCE = textwrap.dedent('''
    """Throwaway module for persistence tests."""
    import torch
    from torch_utils import persistence

    @persistence.persistent_class
    class Scaler(torch.nn.Module):
        def __init__(self, channels, gain=2.0, tags=()):
            super().__init__()
            self.channels = channels
            self.weight = torch.nn.Parameter(torch.arange(channels, dtype=torch.float32) * gain)
            self.register_buffer('offset', torch.full([channels], 0.5))
            self.tags = list(tags)

        def forward(self, x):
            return x * self.weight + self.offset

    @persistence.persistent_class
    class Pair(torch.nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.first = Scaler(channels, gain=1.0)
            self.second = Scaler(channels, gain=3.0)

        def forward(self, x):
            return self.second(self.first(x))
''')


def import_toy_module(folder):
    """Write TOY_MODULE_SOURCE under a unique module name in `folder` and import it from there."""
    name = f'toy_persistent_{uuid.uuid4().hex[:8]}'
    path = os.path.join(folder, f'{name}.py')
    with open(path, 'w') as f:
        f.write(TOY_MODULE_SOURCE)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def start_python(script, cwd, env=None):
    """Start `script` in a fresh interpreter in `cwd` (PYTHONPATH cleared, one thread)."""
    env = dict(env if env is not None else os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    env.pop('PYTHONPATH', None)
    return subprocess.Popen([sys.executable, '-c', textwrap.dedent(script)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_python(proc, timeout=limits.seconds(120)):
    """Wait for a start_python() process; return the JSON on the last line of its stdout."""
    stdout, stderr = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f'subprocess failed ({proc.returncode}):\n{stderr[-3000:]}')
    return json.loads(stdout.strip().splitlines()[-1])


def run_python(script, cwd, env=None, timeout=limits.seconds(120)):
    """Run `script` in a fresh interpreter in `cwd`; return the JSON on the last line of its stdout."""
    return finish_python(start_python(script, cwd, env), timeout)


def two_rank_worker(rank, world_size, init_file, result_dir):
    """One of two gloo ranks: reports statistics and checks DDP consistency; writes what it saw as JSON."""
    from torch_utils import misc, training_stats
    torch.set_num_threads(1)
    torch.distributed.init_process_group(backend='gloo', init_method=f'file://{init_file}',
                                         rank=rank, world_size=world_size)
    try:
        training_stats.init_multiprocessing(rank=rank, sync_device=torch.device('cpu'))
        collector = training_stats.Collector(regex='Test/.*')
        # Rank 0 reports [1, 2], rank 1 reports [3, 4, 5]: 5 values over both ranks.
        values = [1.0, 2.0] if rank == 0 else [3.0, 4.0, 5.0]
        training_stats.report('Test/value', torch.tensor(values))
        training_stats.report0('Test/rank0_only', 10.0 + rank)
        collector.update()

        torch.manual_seed(0)
        net = torch.nn.Linear(2, 2)
        misc.check_ddp_consistency(net)  # Identical on both ranks: must pass.
        if rank == 1:
            with torch.no_grad():
                net.bias.add_(1)
        try:
            misc.check_ddp_consistency(net)
            ddp_error = None
        except AssertionError as error:
            ddp_error = str(error)
        result = dict(rank=rank, stats=collector.as_dict(), ddp_error=ddp_error)
        with open(os.path.join(result_dir, f'rank{rank}.json'), 'w') as f:
            json.dump(result, f)
    finally:
        torch.distributed.destroy_process_group()
