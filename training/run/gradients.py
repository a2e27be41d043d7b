"""Gradient averaging over ranks in buckets that start while backward still runs, for 1 process, N local or torchrun."""

# Each training phase (Gmain, Greg, Dmain, Dreg) has its own reducer, because each reaches the parameters in
# its own order. A phase ends in one or more backward passes (Dmain: fakes, then reals); right before the last
# one, `arm()` makes every parameter's post-accumulate hook count it as final. Buckets (about bucket_mb of
# parameters each) start an asynchronous all-reduce as soon as all their parameters are final, strictly in
# bucket order, so every rank issues the same collectives in the same order and communication overlaps the
# rest of backward, as DDP's reducer does.
#
# The bucket order is learned from the phase's first step, as DDP learns it: parameters whose gradients were
# already complete before the last backward (used only by an earlier pass, such as GGDR's decoder in Dmain's
# fake pass) come first and start at arm(), then the others in the order their gradients arrived, then those
# without gradients. Rank 0's order is broadcast once, so all ranks bucket alike. Before that first step the
# order is reverse registration, roughly backward's. `finish()` starts what is left, waits, averages and
# replaces NaN/inf entries. With one process there is nothing to send: finish() only cleans the gradients.

import time

import torch

DEFAULT_BUCKET_MB = 25


class GradientReducer:
    """Averages the gradients of one module's parameters over all ranks for one training phase."""

    def __init__(self,
        module,                             # The module whose parameters' gradients are averaged.
        num_processes,                      # World size; 1 = no communication.
        bucket_mb   = DEFAULT_BUCKET_MB,    # Target bucket size in MB (by parameter bytes).
        overlap     = True,                 # Start buckets from backward hooks (False: all in finish()).
    ):
        self.num_processes = num_processes
        self.overlap = overlap and num_processes > 1
        self.module = module
        self.params = list(module.parameters())
        self.cap_bytes = bucket_mb * 2 ** 20
        self.order_learned = False
        self._set_order(list(range(len(self.params)))[::-1])  # Reverse registration until the first step shows better.
        self._hooks = []
        self._armed = False
        self._ready = []
        self._pending = []          # (params sent, flat tensor, work handle).
        self._next_to_start = 0
        self._arrivals = []         # Indices of the parameters whose gradients arrived since arm(), in order.
        self._final_at_arm = []     # Indices of the parameters that had a gradient when arm() was called.
        self.wait_seconds = 0.0     # Time spent in finish() waiting for communication (for bench/).
        self.started_in_backward = 0  # Buckets started before finish(), i.e. overlapping backward (tests, bench/).
        self.first_bucket_lead = 0  # Gradients that arrived after the first bucket started, last step (tests).

    def _set_order(self, order):
        self.buckets = _make_buckets([self.params[index] for index in order], self.cap_bytes)
        self._bucket_of = {id(param): index for index, bucket in enumerate(self.buckets) for param in bucket}
        self._expected = None       # Per bucket, how many of its parameters report through hooks this step.

    def _register_hooks(self):
        """Hooks on the parameters the phase trains (hooks need requires_grad, so this waits for the first arm())."""
        self._index_of = {id(param): index for index, param in enumerate(self.params)}
        self._hooks = [param.register_post_accumulate_grad_hook(self._on_grad) for param in self.params if param.requires_grad]

    def close(self):
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def arm(self):
        """The next backward pass is the phase's last: count parameters as final as their gradients arrive."""
        self._armed = True
        self._pending = []
        self._next_to_start = 0
        if not self.overlap:
            return
        if not self._hooks:
            self._register_hooks()
        self._arrivals = []
        self._final_at_arm = [index for index, param in enumerate(self.params) if param.grad is not None]
        self.first_bucket_lead = 0
        if self.order_learned:  # Parameters the last pass does not reach are final now.
            self._ready = [set() for _ in self.buckets]
            for index in self._final_at_arm:
                if index not in self._last_pass:
                    self._ready[self._bucket_of[id(self.params[index])]].add(id(self.params[index]))
            self._start_ready()
        else:
            self._ready = None  # The first step only watches: all buckets start in finish().

    def _on_grad(self, param):
        if not (self._armed and self.overlap):
            return
        if self._next_to_start > 0:
            self.first_bucket_lead += 1
        if self._ready is None:
            self._arrivals.append(self._index_of[id(param)])
            return
        bucket = self._bucket_of[id(param)]
        if bucket < self._next_to_start:
            raise RuntimeError(f'GradientReducer: a gradient of {type(self.module).__name__} arrived after its bucket was '
                               f'sent; this phase reaches other parameters than in its first step (overlap=False '
                               f'averages after backward instead)')
        self._ready[bucket].add(id(param))
        self._start_ready()

    def _start_ready(self):
        while self._next_to_start < len(self.buckets) and \
                len(self._ready[self._next_to_start]) == self._expected[self._next_to_start]:
            self._start(self._next_to_start)
            self.started_in_backward += 1
            self._next_to_start += 1

    def _start(self, index):
        params = [param for param in self.buckets[index] if param.grad is not None]
        if not params:
            return
        flat = torch.cat([param.grad.detach().flatten() for param in params])
        work = torch.distributed.all_reduce(flat, async_op=True) if self.num_processes > 1 else None
        self._pending.append((params, flat, work))

    def _learn_order(self):
        """Bucket by what the first step showed: final before the last pass, then arrival order, then the rest."""
        last_pass = list(dict.fromkeys(self._arrivals))
        reached = set(last_pass)
        early = [index for index in self._final_at_arm if index not in reached]
        rest = [index for index in range(len(self.params)) if index not in reached and index not in early]
        layout = torch.tensor([len(early), len(last_pass), *early, *last_pass, *rest], dtype=torch.int64,
                              device=self.params[0].device)
        torch.distributed.broadcast(layout, src=0)  # Once per phase: every rank buckets as rank 0 does.
        num_early, num_last, *order = layout.tolist()
        self._set_order(order)
        self._last_pass = set(order[num_early:num_early + num_last])
        will_be_ready = {id(self.params[index]) for index in order[:num_early + num_last]}
        self._expected = [sum(id(param) in will_be_ready for param in bucket) for bucket in self.buckets]
        self.order_learned = True

    def finish(self):
        """Start the buckets not yet started, wait for all, and write the averaged, finite gradients back."""
        if not self._armed:  # No arm() since the last finish(): nothing was started during backward.
            self._pending, self._next_to_start = [], 0
        learn = self._armed and self.overlap and not self.order_learned
        self._armed = False
        for index in range(self._next_to_start, len(self.buckets)):
            self._start(index)
        self._next_to_start = len(self.buckets)
        start = time.perf_counter()
        for params, flat, work in self._pending:
            if work is not None:
                work.wait()
        self.wait_seconds += time.perf_counter() - start
        for params, flat, _work in self._pending:
            if self.num_processes > 1:
                flat /= self.num_processes
            torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
            for param, grad in zip(params, flat.split([param.numel() for param in params])):
                param.grad = grad.reshape(param.shape)
        self._pending = []
        if learn:
            self._learn_order()


def _make_buckets(params, cap_bytes):
    """Consecutive groups of parameters of about cap_bytes each (a large parameter gets a bucket of its own)."""
    buckets, current, size = [], [], 0
    for param in params:
        nbytes = param.numel() * param.element_size()
        if current and size + nbytes > cap_bytes:
            buckets.append(current)
            current, size = [], 0
        current.append(param)
        size += nbytes
    if current:
        buckets.append(current)
    return buckets
