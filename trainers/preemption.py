"""How a run learns that it must stop: signals and provider interruption notices set one flag.

Handlers do nothing but set the flag (and run any handler that was installed before), so the
training loop decides when it is safe to stop: at the next micro-batch, with a checkpoint. The
spot watcher polls the AWS instance metadata ``spot/instance-action`` key, which answers 404 until
AWS schedules the interruption (about two minutes ahead) and 200 from then on; its URL is
configurable so that tests, and other providers' compatible endpoints, can serve it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import urllib.request
from collections.abc import Iterator
from types import FrameType
from typing import Any


class StopFlag:
    """Set from a signal handler or a watcher thread; read by the loop between micro-batches."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


@contextlib.contextmanager
def stop_on_signals(flag: StopFlag) -> Iterator[None]:
    """SIGTERM/SIGINT set the flag; a handler installed before ours still runs (chained)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        flag.set(signal.Signals(signum).name)
        earlier = previous.get(signum)
        if callable(earlier) and earlier is not signal.default_int_handler:
            earlier(signum, frame)

    for wanted in (signal.SIGTERM, signal.SIGINT):
        previous[wanted] = signal.signal(wanted, handler)
    try:
        yield
    finally:
        for number, earlier in previous.items():
            signal.signal(number, earlier)


class SpotNoticeWatcher(threading.Thread):
    """Polls the AWS spot ``instance-action`` key; any 200 answer means the host is being taken.

    IMDSv2 needs a session token from ``/latest/api/token`` on the same host; when that request
    fails (IMDSv1, or a test server without it) the watcher asks without a token.
    """

    def __init__(self, url: str, interval: float, flag: StopFlag) -> None:
        super().__init__(name="spot-notice", daemon=True)
        self.url = url
        self.interval = interval
        self.flag = flag
        self._stop = threading.Event()
        scheme, _, rest = url.partition("://")
        self.token_url = f"{scheme}://{rest.split('/', 1)[0]}/latest/api/token"

    def _token(self) -> str | None:
        request = urllib.request.Request(
            self.token_url, method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:
                return str(answer.read().decode().strip()) or None
        except (OSError, ValueError):
            return None

    def poll_once(self) -> bool:
        token = self._token()
        headers = {"X-aws-ec2-metadata-token": token} if token else {}
        try:
            with urllib.request.urlopen(
                urllib.request.Request(self.url, headers=headers), timeout=2
            ) as answer:
                noticed = answer.status == 200
        except (OSError, ValueError):
            noticed = False  # 404 (no notice yet), or metadata service unreachable
        if noticed:
            self.flag.set("spot-notice")
        return noticed

    def run(self) -> None:
        while not self._stop.is_set() and not self.flag.is_set():
            if self.poll_once():
                return
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
