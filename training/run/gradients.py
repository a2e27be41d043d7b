"""Gradient averaging over ranks in buckets that start while backward still runs, for 1 process, N local or torchrun."""

# The training loop's phases each end in one or more backward passes (Dmain: fakes, then reals). Once the
# last of them is about to run, `arm()` makes every parameter's post-accumulate hook count it as final;
# a bucket (about bucket_mb of parameters, in reverse registration order, roughly the order backward
# reaches them) whose parameters are all final starts an asynchronous all-reduce at once, so communication
# overlaps the rest of backward, as DDP's reducer does. Buckets start strictly in index order, so every
# rank issues the same collectives in the same order. `finish()` starts what the last pass never reached
# (parameters only earlier passes used, e.g. GGDR's decoder in Dmain's real pass), waits, averages and
# replaces NaN/inf entries. With one process there is nothing to send: finish() only cleans the gradients.

import time

import torch

DEFAULT_BUCKET_MB = 25


class GradientReducer:
    """Averages the gradients of one module's parameters over all ranks; one instance per trained module."""

    def __init__(self,
        module,                             # The module whose parameters' gradients are averaged.
        num_processes,                      # World size; 1 = no communication.
        bucket_mb   = DEFAULT_BUCKET_MB,    # Target bucket size in MB (by parameter bytes).
        overlap     = True,                 # Start buckets from backward hooks (False: all in finish()).
    ):
        self.num_processes = num_processes
        self.overlap = overlap and num_processes > 1
        self.module = module
        self.buckets = _make_buckets(list(module.parameters())[::-1], bucket_mb * 2 ** 20)  # Reverse: backward's order.
        self._bucket_of = {id(param): index for index, bucket in enumerate(self.buckets) for param in bucket}
        self._expected = None       # Per bucket, how many of its parameters report through hooks (set at arm()).
        self._hooks = []
        self._armed = False
        self._ready = []
        self._pending = []          # (params sent, flat tensor, work handle).
        self._next_to_start = 0
        self.wait_seconds = 0.0     # Time spent in finish() waiting for communication (for bench/).
        self.started_in_backward = 0  # Buckets started from hooks, i.e. overlapping backward (for tests and bench/).

    def _register_hooks(self):
        """Hooks on the parameters the phase trains (hooks need requires_grad, so this waits for the first arm())."""
        hooked = [param for param in self.module.parameters() if param.requires_grad]
        self._hooks = [param.register_post_accumulate_grad_hook(self._on_grad) for param in hooked]
        self._expected = [0] * len(self.buckets)
        for param in hooked:
            self._expected[self._bucket_of[id(param)]] += 1

    def close(self):
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def arm(self):
        """The next backward pass is the phase's last: count parameters as final as their gradients arrive."""
        if self.overlap and self._expected is None:
            self._register_hooks()
        self._armed = True
        self._ready = [set() for _ in self.buckets]
        self._pending = []
        self._next_to_start = 0

    def _on_grad(self, param):
        if not (self._armed and self.overlap):
            return
        index = self._bucket_of[id(param)]
        self._ready[index].add(id(param))
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

    def finish(self):
        """Start the buckets not yet started, wait for all, and write the averaged, finite gradients back."""
        if not self._armed:  # No arm() since the last finish(): nothing was started during backward.
            self._pending, self._next_to_start = [], 0
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
