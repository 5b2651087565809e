"""Reading a file a user names (a secret, resolv.conf, a checks file) without ever hanging.

A regular file is read up to a size bound. Anything else (a FIFO, a socket, a device) is opened
non-blocking and read for at most ``PIPE_WAIT`` seconds: a FIFO with no writer would block an
``open()`` forever.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import time

PIPE_WAIT = 1.0


def read_bounded(path: str, limit: int, wait: float = PIPE_WAIT) -> bytes:
    """At most ``limit + 1`` bytes of ``path`` (one more than allowed tells "too large").

    Raises OSError (with ``strerror``) when it cannot be read; for a pipe that gives nothing
    within ``wait`` seconds, ETIMEDOUT.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if stat.S_ISREG(mode):
            os.set_blocking(fd, True)
            chunks, got = [], 0
            while got <= limit:
                chunk = os.read(fd, limit + 1 - got)
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
            return b"".join(chunks)
        return _read_stream(fd, path, limit, wait, fifo=stat.S_ISFIFO(mode))
    finally:
        os.close(fd)


def _read_stream(fd: int, path: str, limit: int, wait: float, fifo: bool) -> bytes:
    end = time.monotonic() + wait
    data = b""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while len(data) <= limit:
        left = end - time.monotonic()
        if left <= 0:
            if data:
                return data  # a writer that keeps the pipe open: what came in time
            message = f"nothing to read within {wait:g}s (a pipe with no writer?)"
            raise TimeoutError(errno.ETIMEDOUT, message, path)
        poller.poll(min(left, 0.1) * 1000)
        try:
            chunk = os.read(fd, limit + 1 - len(data))
        except BlockingIOError:
            continue
        if chunk:
            data += chunk
        elif data or not fifo:
            return data  # end of file (/dev/null ends at once)
        else:
            time.sleep(0.05)  # a FIFO with no writer yet reads as EOF: one may still come
    return data
