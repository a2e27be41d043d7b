"""What a run reports: the per-tick status line, stats.jsonl, TensorBoard scalars and images, best.json, image grids."""

import contextlib
import json
import os
import resource
import sys
import threading
import time

import numpy as np
import PIL.Image
import torch

import dnnlib
from torch_utils import training_stats

#----------------------------------------------------------------------------
# Image grids.

def grid_shape(image_shape, num_images=None):
    """(columns, rows) of the snapshot grid: up to a full-HD screen's worth, at most 12 x 8 and 2 x 2 at least,
    and no more cells than the dataset has images.

    stylegan2-ada-pytorch fills a 4K screen: 1024 images at 32x32, which cost 30-75 s per grid on a CPU.
    """
    _channels, height, width = image_shape
    cols = int(np.clip(1920 // width, 2, 12))
    rows = int(np.clip(1080 // height, 2, 8))
    if num_images is not None and cols * rows > num_images:
        side = max(int(np.sqrt(num_images)), 1)
        cols = min(cols, side)
        rows = min(rows, max(num_images // cols, 1))
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


def tile_images(images, drange, grid_size):
    """NCHW images (values in drange) tiled into one uint8 HWC array of grid_size = (cols, rows)."""
    lo, hi = drange
    images = np.asarray(images, dtype=np.float32)
    images = np.rint((images - lo) * (255 / (hi - lo))).clip(0, 255).astype(np.uint8)
    cols, rows = grid_size
    _n, channels, height, width = images.shape
    images = images.reshape(rows, cols, channels, height, width).transpose(0, 3, 1, 4, 2)
    return images.reshape(rows * height, cols * width, channels)


def save_image_grid(images, path, drange, grid_size):
    """Tile NCHW images (values in drange) into one PNG of grid_size = (cols, rows), written atomically; returns the tile."""
    tiled = tile_images(images, drange, grid_size)
    channels = tiled.shape[2]
    image = PIL.Image.fromarray(tiled[:, :, 0] if channels == 1 else tiled, 'L' if channels == 1 else 'RGB')
    with dnnlib.util.atomic_write(path, 'wb') as f:
        image.save(f, format='png')
    return tiled

#----------------------------------------------------------------------------
# Per-tick report.

def cpu_memory_gb():
    """Peak resident memory of this process in GiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 30 if sys.platform == 'darwin' else peak / 2 ** 20  # bytes on macOS, KiB on Linux.


def eta_seconds(progress, timing, total_kimg):
    """Seconds until total_kimg at the pace of this process so far (since its start, or its resume)."""
    done = progress.cur_nimg - timing.get('start_nimg', 0)
    left = total_kimg * 1000 - progress.cur_nimg
    if done <= 0 or left <= 0:
        return 0.0
    return (timing.tick_end - timing.start) / done * left


def progress_line(progress, timing, now, total_kimg, kimg_per_tick):
    """A line between ticks: images done in this tick, the rate since it began and the ETA (host counters only)."""
    done = progress.cur_nimg - progress.tick_start_nimg
    rate = done / max(now - timing.tick_start, 1e-9)
    eta = eta_seconds(progress, dnnlib.EasyDict(timing, tick_end=now), total_kimg)
    return (f'  ... kimg {progress.cur_nimg / 1e3:.3f}: {done} images into tick {progress.cur_tick} (ends at kimg '
            f'{(progress.tick_start_nimg + kimg_per_tick * 1000) / 1e3:.3f}), {rate:.1f} img/s, eta '
            f'{dnnlib.util.format_time(eta)}')


def status_line(progress, timing, device, augment_p, total_kimg):
    """One line per tick with the standard fields and the ETA; each value is also reported to training_stats (rank 0)."""
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
        f"eta {dnnlib.util.format_time(report('Timing/eta_sec', eta_seconds(progress, timing, total_kimg)))}",
    ]
    report('Timing/total_hours', (timing.tick_end - timing.start) / 3600)
    report('Timing/total_days', (timing.tick_end - timing.start) / 86400)
    return ' '.join(fields)


class StatsWriter:
    """Appends one JSON object per tick to stats.jsonl (rewritten atomically) and mirrors it to TensorBoard.

    TensorBoard's step is the number of images shown (cur_nimg), so short runs with fractional ticks get
    distinct points; its wall time is the real time each point was written.
    """

    def __init__(self,
        run_dir,                    # Run directory; None on ranks other than 0 (nothing is written).
    ):
        self.path = os.path.join(run_dir, 'stats.jsonl') if run_dir else None
        self.events = os.path.join(run_dir, 'events.out.tfevents.*') if run_dir else None  # TensorBoard's files.
        self.tensorboard = None
        if run_dir:
            try:
                from torch.utils import tensorboard  # pylint: disable=import-outside-toplevel  # Slow to import; rank 0 only.
            except ImportError as exc:
                print(f'Skipping TensorBoard export: {exc}')
                return
            with self._events_written():
                self.tensorboard = tensorboard.SummaryWriter(run_dir)
            self._previous_hook = threading.excepthook
            threading.excepthook = self._writer_thread_hook

    def _writer_thread_hook(self, args):
        """TensorBoard's writer thread dies on a full disk and the next write in the training thread raises the same
        error, which becomes our one line: the thread's own traceback would only repeat it."""
        if isinstance(args.exc_value, OSError) and type(args.thread).__name__ == '_AsyncWriterThread':
            return
        self._previous_hook(args)

    @contextlib.contextmanager
    def _events_written(self):
        """A full disk or read-only place under TensorBoard's writer (its thread reports at the next write or flush)
        is one WriteError naming the event files."""
        try:
            yield
        except OSError as exc:
            raise dnnlib.util.write_error(exc, self.events) or exc from None

    def write(self, stats, metrics, cur_nimg):
        if self.path is None:
            return
        timestamp = time.time()
        line = json.dumps(dict(stats, timestamp=timestamp)) + '\n'
        previous = open(self.path, encoding='utf-8').read() if os.path.isfile(self.path) else ''
        with dnnlib.util.atomic_write(self.path, 'w') as f:
            f.write(previous + line)
        if self.tensorboard is not None:
            with self._events_written():
                for name, value in stats.items():
                    self.tensorboard.add_scalar(name, value.mean, global_step=int(cur_nimg), walltime=timestamp)
                for name, value in metrics.items():
                    self.tensorboard.add_scalar(f'Metrics/{name}', value, global_step=int(cur_nimg), walltime=timestamp)
                self.tensorboard.flush()

    def write_image(self, tag, image, cur_nimg):
        """An HWC uint8 image (a fakes grid) at step cur_nimg."""
        if self.tensorboard is not None:
            with self._events_written():
                self.tensorboard.add_image(tag, image, global_step=int(cur_nimg), walltime=time.time(), dataformats='HWC')
                self.tensorboard.flush()

    def close(self):
        if self.tensorboard is not None:
            try:
                with self._events_written():
                    self.tensorboard.close()  # Joins the writer thread.
            finally:
                if threading.excepthook == self._writer_thread_hook:
                    threading.excepthook = self._previous_hook

#----------------------------------------------------------------------------
# best.json: the best value of each metric so far and the snapshot that reached it.

def better_direction(result_key):
    """'lower' or 'higher' for a metric result key, or None for keys that do not rank snapshots.

    Distances and path lengths (fid*, kid*, fd_dinov2*, ppl*) are better lower; Inception score means (is*_mean) and
    precision and recall (pr*_precision, pr*_recall) are better higher; is*_std is a spread, not a score.
    """
    if result_key.startswith(('fid', 'kid', 'ppl', 'fd_')):
        return 'lower'
    if result_key.startswith('is') and result_key.endswith('_mean'):
        return 'higher'
    if result_key.startswith('pr') and result_key.endswith(('_precision', '_recall')):
        return 'higher'
    return None


def update_best(best, results, snapshot_name, cur_nimg):
    """best ({key: dict(value, better, snapshot_pkl, kimg)}) with every result that beats it; returns the keys that changed."""
    changed = []
    for key, value in results.items():
        direction = better_direction(key)
        if direction is None or not np.isfinite(value):
            continue
        previous = best.get(key)
        if previous is None or (value < previous['value'] if direction == 'lower' else value > previous['value']):
            best[key] = dict(value=float(value), better=direction, snapshot_pkl=snapshot_name, kimg=cur_nimg / 1e3)
            changed.append(key)
    return changed


def write_best(run_dir, best):
    """Rewrite <run_dir>/best.json atomically."""
    with dnnlib.util.atomic_write(os.path.join(run_dir, 'best.json'), 'w') as f:
        json.dump(best, f, indent=2, sort_keys=True)
        f.write('\n')
