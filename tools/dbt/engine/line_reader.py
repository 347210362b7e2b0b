"""The worker's request lines, read with a timeout: the worker does deferred work when no request comes."""

from __future__ import annotations

import os
import select
import time


class LineReader:
    """The request lines of fd 0, with a timeout (select on the fd; whole lines already read are served first)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.eof = False

    def readline(self, timeout: float | None) -> str | None:
        """A line, '' at end of input, None when `timeout` seconds passed with no whole line."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buffer and not self.eof:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self.fd], [], [], wait)[0]:
                return None
            chunk = os.read(self.fd, 1 << 16)
            self.buffer += chunk
            self.eof = not chunk
        line, newline, self.buffer = self.buffer.partition(b"\n")
        if not newline and not line:
            return ""
        return line.decode("utf-8") + "\n"

    def waiting(self) -> bool:
        """Whether a request has come (some of it, at least) that no readline took yet; never blocks."""
        return bool(self.buffer) or self.eof or bool(select.select([self.fd], [], [], 0)[0])
