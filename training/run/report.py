"""What a run reports: the per-tick status line, stats.jsonl, TensorBoard scalars and image grids."""

import json
import os
import resource
import sys
import time

import numpy as np
import PIL.Image
import torch

import dnnlib
from torch_utils import training_stats

#----------------------------------------------------------------------------
# Image grids.

def grid_shape(image_shape):
    """(columns, rows) of the snapshot grid: about a 4K screen's worth, as stylegan2-ada-pytorch chooses."""
    _channels, height, width = image_shape
    cols = int(np.clip(7680 // width, 7, 32))
    rows = int(np.clip(4320 // height, 4, 32))
    return cols, rows


def grid_indices(training_set, cols, rows, seed):
    """Dataset indices for the reals grid: random images, or for labelled data one row per label group."""
    rnd = np.random.RandomState(seed)
    num = cols * rows
    if not training_set.has_labels:
        order = np.arange(len(training_set))
        rnd.shuffle(order)
        return [int(order[i % len(order)]) for i in range(num)]
    groups = {}
    for idx in range(len(training_set)):
        groups.setdefault(tuple(training_set.get_label(idx).flatten()), []).append(idx)
    keys = sorted(groups)
    for key in keys:
        rnd.shuffle(groups[key])
    indices = []
    for y in range(rows):
        group = groups[keys[y % len(keys)]]
        indices += [group[x % len(group)] for x in range(cols)]
    return indices


def save_image_grid(images, path, drange, grid_size):
    """Tile NCHW images (values in drange) into one PNG of grid_size = (cols, rows), written atomically."""
    lo, hi = drange
    images = np.asarray(images, dtype=np.float32)
    images = np.rint((images - lo) * (255 / (hi - lo))).clip(0, 255).astype(np.uint8)
    cols, rows = grid_size
    _n, channels, height, width = images.shape
    images = images.reshape(rows, cols, channels, height, width).transpose(0, 3, 1, 4, 2)
    images = images.reshape(rows * height, cols * width, channels)
    image = PIL.Image.fromarray(images[:, :, 0] if channels == 1 else images, 'L' if channels == 1 else 'RGB')
    with dnnlib.util.atomic_write(path, 'wb') as f:
        image.save(f, format='png')

#----------------------------------------------------------------------------
# Per-tick report.

def cpu_memory_gb():
    """Peak resident memory of this process in GiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 30 if sys.platform == 'darwin' else peak / 2 ** 20  # bytes on macOS, KiB on Linux.


def status_line(progress, timing, device, augment_p):
    """One line per tick with the standard fields; each value is also reported to training_stats (rank 0)."""
    tick_sec = timing.tick_end - timing.tick_start
    tick_kimg = max(progress.cur_nimg - progress.tick_start_nimg, 1) / 1e3
    gpu_mem = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == 'cuda' else 0.0
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    report = training_stats.report0
    fields = [
        f"tick {report('Progress/tick', progress.cur_tick):<5d}",
        f"kimg {report('Progress/kimg', progress.cur_nimg / 1e3):<8.3f}",
        f"time {dnnlib.util.format_time(report('Timing/total_sec', timing.tick_end - timing.start)):<12s}",
        f"sec/tick {report('Timing/sec_per_tick', tick_sec):<7.1f}",
        f"sec/kimg {report('Timing/sec_per_kimg', tick_sec / tick_kimg):<7.2f}",
        f"maintenance {report('Timing/maintenance_sec', timing.maintenance):<6.1f}",
        f"cpumem {report('Resources/cpu_mem_gb', cpu_memory_gb()):<6.2f}",
        f"gpumem {report('Resources/peak_gpu_mem_gb', gpu_mem):<6.2f}",
        f"augment {report('Progress/augment', augment_p):.3f}",
    ]
    report('Timing/total_hours', (timing.tick_end - timing.start) / 3600)
    report('Timing/total_days', (timing.tick_end - timing.start) / 86400)
    return ' '.join(fields)


class StatsWriter:
    """Appends one JSON object per tick to stats.jsonl (rewritten atomically) and mirrors it to TensorBoard."""

    def __init__(self,
        run_dir,                    # Run directory; None on ranks other than 0 (nothing is written).
        start_time,                 # Wall-clock start of the run, for TensorBoard's walltime.
    ):
        self.path = os.path.join(run_dir, 'stats.jsonl') if run_dir else None
        self.start_time = start_time
        self.tensorboard = None
        if run_dir:
            try:
                from torch.utils import tensorboard  # pylint: disable=import-outside-toplevel
                self.tensorboard = tensorboard.SummaryWriter(run_dir)
            except ImportError as exc:
                print(f'Skipping TensorBoard export: {exc}')

    def write(self, stats, metrics, cur_nimg):
        if self.path is None:
            return
        timestamp = time.time()
        line = json.dumps(dict(stats, timestamp=timestamp)) + '\n'
        previous = open(self.path, encoding='utf-8').read() if os.path.isfile(self.path) else ''
        with dnnlib.util.atomic_write(self.path, 'w') as f:
            f.write(previous + line)
        if self.tensorboard is not None:
            global_step = int(cur_nimg / 1e3)
            walltime = timestamp - self.start_time
            for name, value in stats.items():
                self.tensorboard.add_scalar(name, value.mean, global_step=global_step, walltime=walltime)
            for name, value in metrics.items():
                self.tensorboard.add_scalar(f'Metrics/{name}', value, global_step=global_step, walltime=walltime)
            self.tensorboard.flush()

    def close(self):
        if self.tensorboard is not None:
            self.tensorboard.close()
