"""Where the launcher writes, how it waits and what time it is (replaced in tests), and small formatting helpers."""
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Callable, Optional


class Io:
    """The launcher's terminal: `out` (stdout), `err` (stderr), `sleep`, `now`, and `interrupted`, set by Ctrl-C.

    The launch code itself never uses an Io (a Lambda calls it): only the commands and the Python API's Run do.
    """

    def __init__(self, out: Optional[Callable[[str], None]] = None, err: Optional[Callable[[str], None]] = None,
                 sleep: Optional[Callable[[float], None]] = None, now: Optional[Callable[[], datetime]] = None,
                 interrupted: Optional[threading.Event] = None) -> None:
        self.interrupted = interrupted or threading.Event()
        self.out = out or _write(sys.stdout)
        self.err = err or _write(sys.stderr)
        self.sleep = sleep or self._real_sleep
        self.now = now or (lambda: datetime.now(timezone.utc))

    def _real_sleep(self, seconds: float) -> None:
        # A Ctrl-C ends the wait at once.
        self.interrupted.wait(seconds)


def _write(stream) -> Callable[[str], None]:  # type: ignore[no-untyped-def]
    def write(text: str) -> None:
        stream.write(text)
        stream.flush()
    return write


def quiet_io() -> Io:
    """An Io that prints nothing (the Python API's default)."""
    return Io(out=lambda _t: None, err=lambda _t: None)


def format_bytes(n: int) -> str:
    """Bytes in a human unit."""
    if n < 1024:
        return "%d B" % n
    if n < 1024 * 1024:
        return "%.1f KiB" % (n / 1024)
    if n < 1024 ** 3:
        return "%.1f MiB" % (n / 1024 / 1024)
    return "%.2f GiB" % (n / 1024 ** 3)


def format_age(seconds: float) -> str:
    """A duration in seconds, as `1h02m`, `5m10s` or `42s`."""
    s = max(0, int(seconds // 1))
    if s >= 86400:
        return "%dd%02dh" % (s // 86400, (s % 86400) // 3600)
    if s >= 3600:
        return "%dh%02dm" % (s // 3600, (s % 3600) // 60)
    if s >= 60:
        return "%dm%02ds" % (s // 60, s % 60)
    return "%ds" % s


def format_number(x: float) -> str:
    """A number as JavaScript's String() writes it (`4.25`, `2`, `1.26`): the tags and messages keep their spelling."""
    if float(x).is_integer():
        return str(int(x))
    return repr(float(x))


def parse_iso(text: str) -> float:
    """The POSIX time of an ISO 8601 UTC time (`...Z`)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def monotonic() -> float:
    return time.monotonic()
