"""dnnlib.progress.Progress: one redrawn line on a terminal, a bounded number of plain lines elsewhere."""

import io

import pytest

from dnnlib import progress


class FakeClock:
    """Seconds that move only when a test says so."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def run_items(progress, clock, count, seconds_each):
    with progress:
        for _ in range(count):
            clock.now += seconds_each
            progress.advance()


def make(total, stream, clock, **kwargs):
    return progress.Progress(total=total, label='Generating', unit='images', stream=stream, clock=clock, **kwargs)


def test_log_gets_one_line_per_tenth_and_a_final_line():
    clock, out = FakeClock(), io.StringIO()
    run_items(make(1000, out, clock, tty=False), clock, 1000, 0.1)
    lines = out.getvalue().splitlines()
    assert '\r' not in out.getvalue()
    assert len(lines) == 10
    assert lines[0] == 'Generating  100/1000 (10%)  10.0 images/s  ETA 1m 30s'
    assert lines[-1] == 'Generating  1000/1000 (100%)  10.0 images/s  done in 1m 40s'


def test_short_work_in_a_log_prints_only_its_final_line():
    clock, out = FakeClock(), io.StringIO()
    run_items(make(5, out, clock, tty=False), clock, 5, 0.2)
    assert out.getvalue().splitlines() == ['Generating  5/5 (100%)  5.0 images/s  done in 1s']


def test_work_that_fails_at_once_prints_nothing_in_a_log():
    clock, out = FakeClock(), io.StringIO()
    with pytest.raises(OSError):
        with make(3, out, clock, tty=False) as progress:
            clock.now += 0.1
            progress.advance()
            raise OSError('the disk is full')
    assert out.getvalue() == ''


def test_log_gets_a_line_every_30_seconds_of_slow_work():
    clock, out = FakeClock(), io.StringIO()
    progress = make(10000, out, clock, tty=False)
    for _ in range(95):
        clock.now += 1
        progress.advance()
    assert out.getvalue().splitlines() == [
        'Generating  30/10000 (0%)  1.0 images/s  ETA 2h 46m 10s',
        'Generating  60/10000 (0%)  1.0 images/s  ETA 2h 45m 40s',
        'Generating  90/10000 (0%)  1.0 images/s  ETA 2h 45m 10s',
    ]


def test_log_lines_stay_few_for_many_items():
    clock, out = FakeClock(), io.StringIO()
    run_items(make(100000, out, clock, tty=False), clock, 100000, 0.0001)
    assert len(out.getvalue().splitlines()) <= 11


def test_terminal_redraws_one_line_and_ends_it_once():
    clock, out = FakeClock(), FakeTerminal()
    run_items(make(50, out, clock), clock, 50, 0.1)
    text = out.getvalue()
    assert text.count('\n') == 1 and text.endswith('\n')
    draws = text.rstrip('\n').split('\r')[1:]
    assert draws[0].strip() == 'Generating  1/50 (2%)  10.0 images/s  ETA 5s'
    assert draws[-1].strip() == 'Generating  50/50 (100%)  10.0 images/s  done in 5s'


def test_terminal_redraws_at_most_every_redraw_interval():
    clock, out = FakeClock(), FakeTerminal()
    run_items(make(1000, out, clock, redraw=0.2), clock, 1000, 0.001)
    assert out.getvalue().count('\r') <= 7


def test_terminal_blanks_the_rest_of_a_longer_earlier_line():
    clock, out = FakeClock(), FakeTerminal()
    progress = make(None, out, clock, tty=True, redraw=0)
    clock.now = 3725
    progress.advance()
    clock.now = 3726
    progress.advance()
    first, second = out.getvalue().split('\r')[1:]
    assert len(second) >= len(first.rstrip())


def test_an_error_ends_the_terminal_line_without_a_final_line():
    clock, out = FakeClock(), FakeTerminal()
    with pytest.raises(RuntimeError):
        with make(10, out, clock) as progress:
            clock.now += 1
            progress.advance()
            raise RuntimeError('disk full')
    assert 'done' not in out.getvalue() and out.getvalue().endswith('\n')


def test_unknown_total_shows_count_rate_and_elapsed_time():
    clock, out = FakeClock(), io.StringIO()
    run_items(progress.Progress(label='Converting', stream=out, clock=clock), clock, 40, 1)
    assert out.getvalue().splitlines() == ['Converting  30 items  1.0 items/s  elapsed 30s',
                                           'Converting  40 items  1.0 items/s  done in 40s']


def test_update_takes_the_count_so_far():
    clock, out = FakeClock(), io.StringIO()
    progress = make(100, out, clock, tty=False)
    clock.now = 5
    progress.update(25)
    assert out.getvalue() == 'Generating  25/100 (25%)  5.0 images/s  ETA 15s\n'


def test_disabled_progress_prints_nothing():
    clock, out = FakeClock(), FakeTerminal()
    run_items(make(10, out, clock, enabled=False), clock, 10, 1)
    assert out.getvalue() == ''


def test_a_plain_stream_is_not_taken_for_a_terminal():
    assert not progress.Progress(stream=io.StringIO()).is_tty()
    assert progress.Progress(stream=FakeTerminal()).is_tty()


def test_default_stream_is_stderr_at_print_time(capsys):
    clock = FakeClock()
    run_items(progress.Progress(total=2, label='Working', clock=clock), clock, 2, 1)
    captured = capsys.readouterr()
    assert captured.out == '' and captured.err.splitlines()[-1] == 'Working  2/2 (100%)  1.0 items/s  done in 2s'
