"""The training loop, in named steps: build, restore, train one step, end a tick, snapshot, evaluate."""

# training_loop(config, rank, device) runs one process of a run; train.py resolves `config`
# (training/cli/config.py) and training/cli/launch.py starts one process per GPU. Ranks average gradients
# through training/run/gradients.py (buckets sent while backward runs, no DDP wrapper), so the same code
# serves 1 process, N local processes and torchrun across nodes. Only rank 0 writes files. Everything that
# changes during the run lives in the `Run` object below; nothing is kept at module level.

import copy
import dataclasses
import os
import time

import numpy as np
import torch

import dnnlib
from torch_utils import misc
from torch_utils import training_stats
from metrics import metric_main
from torch_utils.ops import paths as op_paths
from training import loss as training_loss
from training import transition as training_transition
from training.augment import ada as training_ada
from training.dataset import DatasetError
from training.run import gradients as run_gradients
from training.run import preemption as run_preemption
from training.run import report as run_report
from training.run import resume as run_resume
from training.run import schedules as run_schedules
from training.run import snapshot as run_snapshot

#----------------------------------------------------------------------------
# Build.

def build_data(config, rank, start_index):
    """(dataset, infinite iterator of (images, labels) for this rank's share of one batch)."""
    training_set = dnnlib.util.construct_class_by_name(**config.training_set_kwargs)
    sampler = misc.InfiniteSampler(dataset=training_set, rank=rank, num_replicas=config.num_processes,
                                   seed=config.random_seed, start_index=start_index)
    loader_kwargs = {k: v for k, v in config.data_loader_kwargs.items() if v is not None}
    if loader_kwargs.get('num_workers', 0) > 0:
        loader_kwargs['worker_init_fn'] = run_preemption.ignore_in_worker
    loader = torch.utils.data.DataLoader(dataset=training_set, sampler=sampler,
                                         batch_size=config.batch_size // config.num_processes, **loader_kwargs)
    return training_set, iter(loader)


def build_networks(config, training_set, device):
    """G, D, G_ema (a frozen copy of G) and the augment pipe (or None), on `device`."""
    common = dict(c_dim=training_set.label_dim, img_resolution=training_set.resolution,
                  img_channels=training_set.num_channels)
    G = dnnlib.util.construct_class_by_name(**config.G_kwargs, **common).train().requires_grad_(False).to(device)
    D = dnnlib.util.construct_class_by_name(**config.D_kwargs, **common).train().requires_grad_(False).to(device)
    G_ema = copy.deepcopy(G).eval()
    augment_pipe = None
    if config.augment_kwargs is not None:
        augment_pipe = dnnlib.util.construct_class_by_name(**config.augment_kwargs).train().requires_grad_(False).to(device)
        augment_pipe.p.copy_(torch.as_tensor(config.augment_p))
    return dnnlib.EasyDict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe)


def build_ada(config, augment_pipe):
    """The AdaController owning augment_pipe.p ('ada' when a target is set, else 'fixed'), or None without a pipe."""
    if augment_pipe is None:
        return None
    mode = 'fixed' if config.ada_target is None else 'ada'
    return training_ada.AdaController(augment_pipe, mode=mode, p=config.augment_p, target=config.ada_target,
                                      interval=config.ada_interval, ada_kimg=config.ada_kimg, batch_size=config.batch_size)


def build_phases(config, nets, device):
    """(loss, phases): each phase has name, module, opt, interval and its own gradient reducer (each phase reaches
    the parameters in its own order); lazy regularisation as in StyleGAN2."""
    loss = dnnlib.util.construct_class_by_name(device=device, G=nets.G, D=nets.D, augment_pipe=nets.augment_pipe,
                                               **config.loss_kwargs)
    phases = []
    for name, module, opt_kwargs, reg_interval in [('G', nets.G, config.G_opt_kwargs, config.G_reg_interval),
                                                   ('D', nets.D, config.D_opt_kwargs, config.D_reg_interval)]:
        opt_kwargs = training_loss.lazy_regularization_opt_kwargs(opt_kwargs, reg_interval)
        opt = dnnlib.util.construct_class_by_name(params=module.parameters(), **opt_kwargs)
        for phase_name, interval in training_loss.training_phases(name, reg_interval):
            phases.append(dnnlib.EasyDict(name=phase_name, network=name, module=module, opt=opt, interval=interval,
                                          reducer=run_gradients.GradientReducer(module, config.num_processes)))
    return loss, phases


def broadcast_networks(nets, num_processes):
    """Make every rank start from rank 0's parameters and buffers."""
    if num_processes > 1:
        for module in nets.values():
            if module is not None:
                for tensor in misc.params_and_buffers(module):
                    torch.distributed.broadcast(tensor, src=0)

#----------------------------------------------------------------------------
# The run.

@dataclasses.dataclass(eq=False)
class Run:
    """The state of one process of a training run, every field declared here; build_run fills them in its order
    (networks, then what --resume restores, then data from that position, then grids); the step methods mutate it."""

    config:         dnnlib.EasyDict         # Resolved config (training/cli/config.py) with run_dir.
    rank:           int                     # This process's rank; only rank 0 writes files.
    device:         torch.device            # Where this process trains.
    np_random:      np.random.RandomState   # Draws the labels of generated samples; seeded per rank, saved on resume.
    progress:       dnnlib.EasyDict         # cur_nimg, cur_tick, batch_idx, tick_start_nimg (saved on resume).
    run_dir:        str = None              # Where rank 0 writes; None on the other ranks.
    preemption:     object = None           # run_preemption.Preemption: a SIGTERM/SIGUSR1 agreed on by every rank.
    nets:           dnnlib.EasyDict = None  # G, D, G_ema and augment_pipe (or None).
    loss:           object = None           # training.loss.StyleGAN2Loss (its path-length mean is saved on resume).
    phases:         list = None             # Gmain, Greg, Dmain, Dreg: module, optimizer, interval, gradient reducer.
    optimizers:     dict = None             # 'G' and 'D': the optimizers (saved on resume).
    ada:            object = None           # training_ada.AdaController owning augment_pipe.p, or None without a pipe.
    training_set:   object = None           # The dataset (training_set_kwargs).
    data_iter:      object = None           # Endless (images, labels) of this rank's share of each batch.
    stats_collector: object = None          # training_stats.Collector of every statistic, read once per tick.
    stats_writer:   object = None           # run_report.StatsWriter: stats.jsonl and TensorBoard (rank 0).
    timing:         dnnlib.EasyDict = None  # start, start_nimg, tick_start, tick_end, maintenance (seconds).
    best:           dict = None             # Best value so far per metric result (best.json).
    grid_size:      tuple = None            # (columns, rows) of reals.png and the fakes grids.
    grid_z:         torch.Tensor = None     # Fixed latents of the fakes grids.
    grid_c:         torch.Tensor = None     # Fixed labels of the fakes grids.
    names_used:     set = dataclasses.field(default_factory=set)  # Snapshot names written (see taken()).
    transition_value: float = None          # Transitional conditioning: the value last written to the buffers.

    @classmethod
    def start(cls, config, rank, device):
        """The state before anything is built: seeds, counters at zero, the run folder of rank 0."""
        return cls(config=config, rank=rank, device=device,
                   np_random=np.random.RandomState(config.random_seed * config.num_processes + rank),
                   progress=dnnlib.EasyDict(cur_nimg=0, cur_tick=0, batch_idx=0, tick_start_nimg=0),
                   run_dir=config.run_dir if rank == 0 else None)

    def log(self, text):
        if self.rank == 0:
            print(text, flush=True)

    def augment_p(self):
        return float(self.nets.augment_pipe.p.cpu()) if self.nets.augment_pipe is not None else 0.0

    # Train one step ---------------------------------------------------------

    def train_step(self):
        """One batch over every phase that is due, then EMA, counters and the ADA update."""
        c, batch_idx = self.config, self.progress.batch_idx
        scheduled = self.apply_schedules()
        self.apply_transition()
        real_img, real_c = self.next_batch()
        real_img = (real_img.to(self.device).to(torch.float32) / 127.5 - 1).split(c.batch_gpu)
        real_c = real_c.to(self.device).split(c.batch_gpu)
        per_rank = c.batch_size // c.num_processes
        for phase in self.phases:
            gen_z = torch.randn([per_rank, self.nets.G.z_dim], device=self.device)
            labels = [self.training_set.get_label(self.np_random.randint(len(self.training_set))) for _ in range(per_rank)]
            gen_c = torch.from_numpy(np.stack(labels)).to(self.device)
            if batch_idx % phase.interval != 0:
                continue
            phase.module.requires_grad_(True)
            phase.opt.zero_grad(set_to_none=True)
            rounds = list(zip(real_img, real_c, gen_z.split(c.batch_gpu), gen_c.split(c.batch_gpu)))
            for index, (round_img, round_c, round_z, round_gen_c) in enumerate(rounds):
                # Gradients are final in the last round's last backward: the reducer starts sending there.
                arm = phase.reducer.arm if index == len(rounds) - 1 else None
                self.loss.accumulate_gradients(phase=phase.name, real_img=round_img, real_c=round_c, gen_z=round_z,
                                               gen_c=round_gen_c, gain=phase.interval, cur_nimg=self.progress.cur_nimg,
                                               before_last_backward=arm)
            phase.reducer.finish()  # Averaged over ranks, NaN/inf replaced.
            phase.module.requires_grad_(False)
            phase.opt.step()
        self.update_ema(scheduled.get('ema_kimg'))
        self.progress.cur_nimg += c.batch_size
        self.progress.batch_idx += 1
        self.update_ada()

    def next_batch(self):
        """This rank's share of the next batch; an image that fails to decode is one line naming it."""
        try:
            return next(self.data_iter)
        except DatasetError as exc:  # From a DataLoader worker, the message holds the worker's traceback.
            raise DatasetError(str(exc).strip().splitlines()[-1].split('DatasetError: ', 1)[-1]) from None

    def apply_schedules(self):
        """Set what the config's cosine schedules drive (training/run/schedules.py) to its value at this step's image
        count: the optimizers' lr and beta2, the loss's gamma, the augmentation p; returns {setting: value} (the EMA
        half-life is used by update_ema). Host arithmetic only."""
        values = run_schedules.values_at(self.config.get('schedules'), self.progress.cur_nimg)
        if not values:
            return values
        for network, opt in self.optimizers.items():
            opt_kwargs = self.config[f'{network}_opt_kwargs']
            run_schedules.apply_to_optimizer(opt, values, self.config[f'{network}_reg_interval'], opt_kwargs.betas[0])
        if 'gamma' in values:
            self.loss.r1_gamma = values['gamma']
        if 'aug_p' in values and self.ada is not None:
            self.ada.set_p(values['aug_p'])
        for name, value in values.items():
            training_stats.report0(f'Schedule/{name}', value)
        return values

    def apply_transition(self):
        """Transitional conditioning: set G's and D's transition buffers to the schedule's value at this step's image
        count (training/transition.py); G_ema takes G's with the other buffers in update_ema. Written only when the
        value changes (between --t-start-kimg and --t-end-kimg, or after a resume), never read back."""
        span = self.config.get('cond_transition')
        if span is None:
            return
        value = training_transition.transition_at(self.progress.cur_nimg, *span)
        if value != self.transition_value:
            with torch.no_grad():
                for module in training_transition.transition_modules(self.nets.G, self.nets.D):
                    module.transition.fill_(value)
            self.transition_value = value
        training_stats.report0('Progress/transition', value)

    def update_ema(self, ema_kimg=None):
        """G_ema <- lerp(G, G_ema, beta) with a half-life of ema_kimg (ramped up by ema_rampup); `ema_kimg` given:
        the scheduled half-life instead of the config's."""
        c = self.config
        ema_nimg = (c.ema_kimg if ema_kimg is None else ema_kimg) * 1000
        if c.ema_rampup is not None:
            ema_nimg = min(ema_nimg, self.progress.cur_nimg * c.ema_rampup)
        ema_beta = 0.5 ** (c.batch_size / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for p_ema, p in zip(self.nets.G_ema.parameters(), self.nets.G.parameters()):
                p_ema.copy_(p.lerp(p_ema, ema_beta))
            for b_ema, b in zip(self.nets.G_ema.buffers(), self.nets.G.buffers()):
                b_ema.copy_(b)

    def update_ada(self):
        """ADA (Karras et al. 2020, Sec. 3): the controller moves p after every ada_interval steps."""
        if self.ada is not None:
            self.ada.step()

    # End of a tick ----------------------------------------------------------

    def tick_due(self, done):
        """A tick ends after the first step and then every kimg_per_tick (and when training is done)."""
        p = self.progress
        return done or p.cur_tick == 0 or p.cur_nimg >= p.tick_start_nimg + self.config.kimg_per_tick * 1000

    def end_tick(self, done):
        """Status line, snapshot and metrics when due (always when `done`: finished or preempted), stats; next tick."""
        c, p = self.config, self.progress
        self.timing.tick_end = time.time()
        self.loss.raise_if_nonfinite(c.num_processes)  # Before anything is written: a NaN update is never snapshotted.
        self.log(run_report.status_line(p, self.timing, self.device, self.augment_p(), c.total_kimg))
        # RNG states are taken before anything else runs, and put back afterwards, so that grids and metrics
        # draw nothing from the generators the next step uses: a resumed run continues on the same numbers.
        rng = run_snapshot.capture_rng(self.np_random, self.device)
        if done or p.cur_tick % c.image_snapshot_ticks == 0:
            grid = self.save_fakes_grid(run_snapshot.progress_name('fakes', p.cur_nimg, '.png', self.taken))
            if grid is not None:
                self.stats_writer.write_image('Fakes', grid, p.cur_nimg)
        metrics = {}
        if done or p.cur_tick % c.network_snapshot_ticks == 0:
            snapshot_data = self.snapshot(rng)
            metrics = self.evaluate(snapshot_data)
        run_snapshot.restore_rng(rng, self.np_random, self.device)
        self.stats_collector.update()
        self.stats_writer.write(self.stats_collector.as_dict(), metrics, p.cur_nimg)
        p.cur_tick += 1
        p.tick_start_nimg = p.cur_nimg
        self.timing.tick_start = time.time()
        self.timing.maintenance = self.timing.tick_start - self.timing.tick_end

    def end_message(self):
        if self.preemption.agreed is None:
            return 'Training done.'
        return (f'Preempted ({self.preemption.agreed}) at kimg {self.progress.cur_nimg / 1e3:g}: snapshot and resume '
                f'state written; run the same command with --resume=latest to continue.')

    def taken(self, name):
        """Whether this run already wrote a file of that name, even one --keep-snapshots has deleted since (snapshot
        names must never repeat, or sort out of training order)."""
        return self.run_dir is not None and (name in self.names_used or os.path.exists(os.path.join(self.run_dir, name)))

    def save_fakes_grid(self, name):
        """G_ema on the fixed grid latents into <run_dir>/name (rank 0); returns the tiled HWC uint8 image, or None."""
        if self.run_dir is None:
            return None
        with torch.no_grad():
            images = [self.nets.G_ema(z=z, c=c, noise_mode='const').cpu()
                      for z, c in zip(self.grid_z.split(self.config.batch_gpu), self.grid_c.split(self.config.batch_gpu))]
        return run_report.save_image_grid(torch.cat(images).numpy(), os.path.join(self.run_dir, name), drange=[-1, 1],
                                          grid_size=self.grid_size)

    def snapshot(self, rng):
        """Write network-snapshot-NNNNNN.pkl and its .resume.pt (rank 0); returns the snapshot dict."""
        c, p = self.config, self.progress
        data = run_snapshot.snapshot_networks(self.nets, c.training_set_kwargs, c.num_processes,
                                              class_names=self.training_set.class_names)
        rank_states = run_snapshot.gather_rank_states(self.rank_state(rng), c.num_processes)
        ada_state = self.ada.state_dict() if self.ada is not None else None  # Collective in 'ada' mode.
        if self.run_dir is not None:
            pkl = os.path.join(self.run_dir, run_snapshot.snapshot_name(p.cur_nimg, self.taken))
            self.names_used.add(os.path.basename(pkl))
            run_snapshot.save_snapshot(pkl, data)
            state = run_resume.resume_state(p, self.optimizers, ada_state, rank_states, c, snapshot_pkl=pkl)
            run_resume.save_resume_state(run_resume.resume_state_path(pkl), state)
            data['path'] = pkl
            if c.get('keep_snapshots'):
                run_resume.prune_snapshots(self.run_dir, c.keep_snapshots, self.log)
        return data

    def rank_state(self, rng):
        """What differs between ranks and an exact resume must restore on each: RNGs, loss state, running averages."""
        return dict(rng=rng, loss=self.loss.state_dict(), averages=run_snapshot.running_averages(self.nets))

    def evaluate(self, snapshot_data):
        """Run config.metrics on the snapshot's G_ema (every rank takes part); returns {name: value}.

        With one process, a metric that fails (a detector deleted mid-run, its line not writable) is logged in
        one line and skipped: training never dies for a metric. With several, a failure inside the metric's
        collectives may be one rank's alone (a detector missing on one node) while the others wait for it, so
        it ends the run (the launcher stops every rank and names this one); writing rank 0's line involves no
        collective, and a failure there is still only logged.
        """
        results = {}
        if not self.config.metrics:
            return results
        self.log(f'Evaluating metrics: {", ".join(self.config.metrics)}')
        for metric in self.config.metrics:
            try:
                result = self.calc_metric(metric_main, metric, snapshot_data)
            except Exception as exc:  # pylint: disable=broad-except
                if self.config.num_processes > 1:
                    raise
                self.log_metric_failure(metric, exc)
                continue
            try:
                if self.rank == 0:
                    metric_main.report_metric(result, run_dir=self.run_dir, snapshot_pkl=snapshot_data.get('path'))
                results.update(result.results)
            except Exception as exc:  # pylint: disable=broad-except
                self.log_metric_failure(metric, exc)
        self.record_best(results, snapshot_data.get('path'))
        return results

    def log_metric_failure(self, metric, exc):
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        self.log(f'Metric {metric} failed, training goes on: {reason}')

    def calc_metric(self, metric_main, metric, snapshot_data):
        """One metric, computed by every rank together (a collective call)."""
        c = self.config
        return metric_main.calc_metric(metric=metric, G=snapshot_data['G_ema'], dataset_kwargs=c.training_set_kwargs,
                                       num_gpus=c.num_processes, rank=self.rank, device=self.device,
                                       detector_dir=c.get('detector_dir'))

    def record_best(self, results, snapshot_pkl):
        """Keep <run_dir>/best.json: per metric result, the best value so far and the snapshot that reached it."""
        if self.run_dir is None or snapshot_pkl is None:
            return
        if not run_report.update_best(self.best, results, os.path.basename(snapshot_pkl), self.progress.cur_nimg):
            return
        try:
            run_report.write_best(self.run_dir, self.best)
        except dnnlib.util.WriteError as exc:
            self.log(f'best.json not updated, training goes on: {exc}')

#----------------------------------------------------------------------------

def build_run(config, rank=0, device=torch.device('cpu')):
    """Everything a process trains with, restored from --resume when given; run_dir=None writes nothing."""
    c = dnnlib.EasyDict(config)
    run = Run.start(c, rank, device)
    run.preemption = run_preemption.Preemption(c.num_processes, timeout=c.get('dist_timeout'))
    torch.manual_seed(c.random_seed * c.num_processes + rank)
    torch.backends.cudnn.benchmark = c.cudnn_benchmark
    misc.set_tf32(c.allow_tf32)
    if c.num_processes > 1:
        training_stats.init_multiprocessing(rank=rank, sync_device=device if device.type == 'cuda' else torch.device('cpu'))

    run.log(op_paths.describe(device))  # Builds and checks the kernels now: SQUEEZEGAN_OPS=cuda fails here, not later.
    # Networks and optimizers first, then whatever --resume restores, then the data from that position.
    run.log('Building networks...')
    probe = dnnlib.util.construct_class_by_name(**c.training_set_kwargs)
    run.nets = build_networks(c, probe, device)
    run.loss, run.phases = build_phases(c, run.nets, device)
    run.ada = build_ada(c, run.nets.augment_pipe)
    run.optimizers = {phase.network: phase.opt for phase in run.phases}
    state = run_resume.restore(run, c)
    if state is not None:
        run_resume.check_total_not_reached(run, c.resume_pkl)
    broadcast_networks(run.nets, c.num_processes)
    run.training_set, run.data_iter = build_data(c, rank, start_index=run.progress.cur_nimg)
    run.log(f'Dataset: {len(run.training_set)} images, {run.training_set.image_shape}, labels {run.training_set.label_shape}')
    run.stats_collector = training_stats.Collector(regex='.*')
    run.timing = dnnlib.EasyDict(start=time.time(), start_nimg=run.progress.cur_nimg, tick_start=time.time(),
                                 tick_end=None, maintenance=0.0)
    run.stats_writer = run_report.StatsWriter(run.run_dir)
    run.best = {}
    setup_grids(run, probe)
    probe.close()
    if state is not None:
        run_resume.restore_rank_states(run, state)
    return run


PROGRESS_INTERVAL_SEC = 30  # A line at least this often between ticks, so a slow tick never looks like a hang.


def training_loop(config, rank=0, device=torch.device('cpu')):
    """Train according to `config` (training/cli/config.py's resolve_config, plus run_dir) in this process."""
    threads = torch.get_num_threads()
    try:
        if config.get('num_threads'):
            torch.set_num_threads(config['num_threads'])
        run = build_run(config, rank, device)
        run.log(f'CPU threads: {torch.get_num_threads()} (--threads; {os.cpu_count()} cores on this machine)')
        _train(run)
    finally:
        torch.set_num_threads(threads)  # The caller's own count: a test process trains more than once.
    run.log(run.end_message())  # After the last grid, snapshot, metrics and TensorBoard events are written.
    return run


def _train(run):
    """Steps until the total is reached or a preemption is agreed, with a tick's work when one is due."""
    run.timing.tick_start = last_line = time.time()
    run.log(f'Training for {run.config.total_kimg:g} kimg...')
    run.preemption.install()
    try:
        while True:
            run.train_step()
            done = run.progress.cur_nimg >= run.config.total_kimg * 1000 or run.preemption.requested()
            if run.tick_due(done):
                run.end_tick(done)
                last_line = time.time()
            elif time.time() - last_line >= PROGRESS_INTERVAL_SEC:
                run.log(run_report.progress_line(run.progress, run.timing, time.time(), run.config.total_kimg,
                                                 run.config.kimg_per_tick))
                last_line = time.time()
            if done:
                break
    finally:
        run.preemption.uninstall()
        run.stats_writer.close()


def setup_grids(run, training_set):
    """Reals grid (written once by rank 0) and the fixed latents and labels of the fakes grids."""
    c = run.config
    cols, rows = c.get('grid_size') or run_report.grid_shape(training_set.image_shape, len(training_set))
    run.grid_size = (cols, rows)
    indices = run_report.grid_indices(training_set, cols, rows, seed=c.random_seed)
    # Own generator: the grid latents do not depend on what building or restoring drew from the global one.
    grid_generator = torch.Generator().manual_seed(c.random_seed)
    run.grid_z = torch.randn([len(indices), run.nets.G.z_dim], generator=grid_generator).to(run.device)
    run.grid_c = torch.from_numpy(np.stack([training_set.get_label(i) for i in indices])).to(run.device)
    if run.run_dir is not None and run.progress.cur_nimg == 0:
        reals = np.stack([training_set[i][0] for i in indices])
        run_report.save_image_grid(reals, os.path.join(run.run_dir, 'reals.png'), drange=[0, 255], grid_size=run.grid_size)
        run.stats_writer.write_image('Fakes', run.save_fakes_grid('fakes_init.png'), run.progress.cur_nimg)
