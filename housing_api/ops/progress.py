"""Progress of a long command: a bar on a terminal, plain lines otherwise.

On a terminal, tqdm draws the bar, with the rate and the time left. When
the output is a file or a pipe (CI logs, ``docker logs``, a job's status),
there is one line when a step starts, one every ``interval`` seconds while
it counts, and one when it ends, so logs stay readable.

Code that does the work announces its steps with ``steps(...)``, as it
would log: nothing is shown unless the command runs it inside ``shown()``
(the CLI: stderr; a job: its status too, through ``listener``).
"""
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar


def _terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """One step of a command: ``total`` units of work (None: not counted).

    ``listener``, if given, is called with a snapshot (``state()``) at every
    line or bar refresh: how a job records its progress in its status.
    """

    def __init__(self, description: str, total: int | None = None,
                 unit: str = "it", stream=None, interval: float = 10.0,
                 listener: Callable[[dict], None] | None = None,
                 bar: bool | None = None,
                 on_close: Callable[[], None] | None = None,
                 emit: Callable[[str], None] | None = None):
        self.description, self.total, self.unit = description, total, unit
        self._on_close = on_close
        #: Where the lines go instead of ``stream`` (a logger, say).
        self._emit = emit
        self.stream = sys.stderr if stream is None else stream
        self.interval, self.listener = interval, listener
        self.done = 0
        self.postfix = ""
        self.started = self._shown = time.monotonic()
        self._bar = None
        if _terminal(self.stream) if bar is None else bar:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=description, unit=f" {unit}",
                             file=self.stream, dynamic_ncols=True,
                             unit_scale=total is not None and total >= 10_000)
        else:
            self._line(f"{description} ..." if total is None
                       else f"{description}: 0 of {total:,} {unit}")
        self._notify()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, kind, exc, tb) -> None:
        self.close(failed=kind is not None)

    def update(self, n: int = 1, postfix: str | None = None) -> None:
        """``n`` more units done; ``postfix`` says more (the best so far...)."""
        self.done += n
        if postfix is not None:
            self.postfix = postfix
        if self._bar is not None:
            if postfix is not None:
                self._bar.set_postfix_str(postfix, refresh=False)
            self._bar.update(n)
        now = time.monotonic()
        if now - self._shown >= self.interval:
            self._shown = now
            if self._bar is None:
                self._line(self.status())
            self._notify()

    def note(self, text: str) -> None:
        """A line of its own, above the bar on a terminal."""
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            self._line(text)

    def close(self, failed: bool = False) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            if failed:
                return
        elapsed = time.monotonic() - self.started
        if failed:
            self._line(f"{self.description}: stopped after {self.done:,} "
                       f"{self.unit}, {_duration(elapsed)}")
            return
        counted = "" if self.total is None and not self.done else (
            f" {self.done:,} {self.unit}"
            + (f" ({self.done / elapsed:,.0f} {self.unit}/s)"
               if elapsed > 0 and self.done >= 100 else ""))
        self._line(f"{self.description}: done{counted} in {_duration(elapsed)}"
                   + (f"; {self.postfix}" if self.postfix else ""))
        self._notify()

    def status(self) -> str:
        """``description: done of total unit, rate, time left``."""
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        text = f"{self.description}: {self.done:,}"
        if self.total is not None:
            text += f" of {self.total:,}"
        text += f" {self.unit}"
        if rate and self.done >= 100:
            text += f", {rate:,.0f} {self.unit}/s"
        if rate and self.total is not None and self.done < self.total:
            text += f", about {_duration((self.total - self.done) / rate)} left"
        return text + (f"; {self.postfix}" if self.postfix else "")

    def state(self) -> dict:
        """What a job's status reports of this step."""
        return {"step": self.description, "done": self.done, "total": self.total,
                "unit": self.unit, "note": self.postfix or None,
                "seconds": round(time.monotonic() - self.started, 1)}

    def _line(self, text: str) -> None:
        if self._emit is not None and self._bar is None:
            self._emit(text)
        else:
            print(text, file=self.stream, flush=True)

    def _notify(self) -> None:
        if self.listener is not None:
            self.listener(self.state())


class Silent:
    """What ``steps`` gives when no command shows progress: does nothing."""

    done = 0

    def __enter__(self) -> "Silent":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def update(self, n: int = 1, postfix: str | None = None) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def close(self, failed: bool = False) -> None:
        pass


_shown: ContextVar[Callable | None] = ContextVar("housing_progress", default=None)


def steps(description: str, total: int | None = None, unit: str = "steps"):
    """A ``Progress`` for one step of the work, shown as the running
    command chose (``shown``), or a ``Silent`` one."""
    make = _shown.get()
    return Silent() if make is None else make(description, total, unit)


@contextmanager
def shown(stream=None, interval: float = 10.0,
          listener: Callable[[dict], None] | None = None, depth: int = 1,
          emit: Callable[[str], None] | None = None):
    """Show the ``steps`` of the work done inside on ``stream``: those
    ``depth`` levels deep at most (the steps inside an open step are
    silent), so that one bar at a time says where the work is. Off a
    terminal, ``emit`` (a logger's method, say) takes the lines if given."""
    open_steps = [0]

    def closed():
        open_steps[0] -= 1

    def make(description, total, unit):
        if open_steps[0] >= depth:
            return Silent()
        open_steps[0] += 1
        return Progress(description, total, unit, stream=stream,
                        interval=interval, listener=listener, on_close=closed,
                        emit=emit)
    token = _shown.set(make)
    try:
        yield
    finally:
        _shown.reset(token)
