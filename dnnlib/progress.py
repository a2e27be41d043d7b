"""Progress of long work: one redrawn line on a terminal, a bounded number of plain lines in logs."""

import sys
import time

from dnnlib.util import format_time

# On a terminal one line redrawn in place ('\r'); elsewhere (log files, CI, SLURM)
# plain lines at every tenth of the work or every 30 s, whichever comes first, but never two within a few
# seconds: a log never gets one line per item, and work that ends (or fails) at once prints only its end.

class Progress:
    """Count/total, rate and ETA of long work, printed to `stream`; use as a context manager.

    Call advance() per item, or update(done) with the count so far. Reaching `total`, or leaving the
    `with` block, prints the final line; an exception ends a terminal line cleanly instead.
    """

    def __init__(self,
        total    = None,            # Expected number of items; None = unknown (no percentage, no ETA).
        label    = '',              # What is going on, printed first: 'Generating', 'real images'.
        unit     = 'items',         # What one item is, for the rate: 'images'.
        stream   = None,            # Where to print; None = sys.stderr at the time of printing.
        tty      = None,            # Redraw one line in place? None = stream.isatty().
        clock    = time.monotonic,  # Seconds; tests pass a fake clock.
        interval = 30.0,            # Not a terminal: print at least this often (seconds) ...
        fraction = 0.1,             # ... and each time this fraction of `total` more is done,
        min_gap  = 3.0,             # ... but not within this many seconds of the start or the last line.
        redraw   = 0.2,             # Terminal: redraw at most this often (seconds).
        enabled  = True,            # False = print nothing (e.g. ranks other than 0).
    ):
        self.total = total
        self.label = label
        self.unit = unit
        self.done = 0
        self._stream = stream
        self._tty = tty
        self._clock = clock
        self._interval = interval
        self._fraction = fraction
        self._min_gap = min_gap
        self._redraw = redraw
        self._enabled = enabled
        self._start = clock()
        self._last_print = self._start  # Clock at the last line printed (or drawn).
        self._last_done = 0             # `done` at the last line printed.
        self._line_width = None         # Width of the line drawn on a terminal; None = nothing drawn yet.
        self._closed = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.close(ok=exc_type is None)

    def advance(self, count=1):
        self.update(self.done + count)

    def update(self, done):
        """Record that `done` items are finished; prints when a line is due, and the final line at `total`."""
        self.done = done
        if self._closed or not self._enabled:
            return
        if self.total is not None and done >= self.total:
            self.close()
        elif self._due(self._clock()):
            self._print(self.line())

    def close(self, ok=True):
        """Print the final line (unless `ok` is False) and end a terminal line; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        if self._enabled and ok:
            self._print(self.line(final=True))
        if self._enabled and self.is_tty() and self._line_width is not None:
            self._write('\n')

    def line(self, final=False):
        """One progress line: 'Generating  37/100 (37%)  12.3 images/s  ETA 5s'."""
        elapsed = max(self._clock() - self._start, 0.0)
        rate = self.done / elapsed if elapsed > 0 else None
        count = f'{self.done}/{self.total} ({self._percent()}%)' if self.total else f'{self.done} {self.unit}'
        speed = '' if rate is None else f'  {_format_rate(rate)} {self.unit}/s'
        if final:
            when = f'  done in {format_time(elapsed)}'
        elif rate and self.total:
            when = f'  ETA {format_time(max(self.total - self.done, 0) / rate)}'
        else:
            when = f'  elapsed {format_time(elapsed)}'
        return f'{self.label}  {count}{speed}{when}'.strip()

    def is_tty(self):
        if self._tty is None:
            try:
                self._tty = bool(self._out().isatty())
            except (AttributeError, ValueError):  # No isatty(), or a closed stream.
                self._tty = False
        return self._tty

    def _percent(self):
        return int(100 * min(self.done, self.total) / self.total)

    def _due(self, now):
        if self.is_tty():
            return self._line_width is None or now - self._last_print >= self._redraw
        if now - self._last_print < self._min_gap:
            return False
        if now - self._last_print >= self._interval:
            return True
        if not self.total:
            return False
        step = max(self.total * self._fraction, 1)
        return int(self.done // step) > int(self._last_done // step)

    def _print(self, text):
        if self.is_tty():
            self._write('\r' + text.ljust(self._line_width or 0))
            self._line_width = len(text)
        else:
            self._write(text + '\n')
        self._last_print = self._clock()
        self._last_done = self.done

    def _out(self):
        return self._stream if self._stream is not None else sys.stderr

    def _write(self, text):
        stream = self._out()
        stream.write(text)
        stream.flush()


def _format_rate(rate):
    """Items per second, with more digits for slow work: '1234', '12.3', '0.42'."""
    return f'{rate:.0f}' if rate >= 99.95 else f'{rate:.1f}' if rate >= 0.995 else f'{rate:.2f}'
