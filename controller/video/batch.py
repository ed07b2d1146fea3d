"""Many datagrams a system call: ``sendmmsg(2)`` over fixed views of one buffer.

A full-HD frame is 4 320 DDP datagrams or Colorlight row packets.  Sent one
``socket.send`` at a time that is about 20 ms of Python a frame, more than
the whole correction; the fused encoder already writes every payload in
place (``fastpath.Payloads``), so the message headers pointing into the
buffer are built once here and each frame is a handful of ``sendmmsg``
calls of up to 1 024 messages (the kernel's ``UIO_MAXIOV``).

Where libc has no ``sendmmsg`` (not Linux) the same datagrams go out one
``send`` at a time.  Errors are the sink's to judge: a datagram the kernel
refuses is skipped and counted, and ``fatal(errno)`` says which errors must
stop the loop instead (a closed socket, a bad address).
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
from collections.abc import Callable

import numpy as np

BATCH = 1024


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.c_void_p), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", _Msghdr), ("len", ctypes.c_uint)]


def _libc_sendmmsg() -> Callable[..., int] | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).sendmmsg
    except (AttributeError, OSError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    fn.restype = ctypes.c_int
    sendmmsg: Callable[..., int] = fn
    return sendmmsg


_SENDMMSG = _libc_sendmmsg()


def sockaddr_in(address: tuple[str, int]) -> bytes:
    """``struct sockaddr_in`` for an IPv4 (host, port), as ``sendmmsg`` wants the destination."""
    return (struct.pack("=H", socket.AF_INET) + struct.pack(">H", address[1])
            + socket.inet_aton(address[0]) + bytes(8))


class BatchSender:
    """Sends ``buffer[start:end]`` for each span, in order, as one datagram each."""

    def __init__(self, sock: socket.socket, buffer: np.ndarray, spans: list[tuple[int, int]],
                 address: tuple[str, int] | None = None) -> None:
        self.sock, self.buffer, self.spans, self.address = sock, buffer, spans, address
        self.batched = _SENDMMSG is not None
        n = len(spans)
        self._iov = (_Iovec * max(n, 1))()
        self._msgs = (_Mmsghdr * max(n, 1))()
        self._name = ctypes.create_string_buffer(sockaddr_in(address), 16) if address else None
        base = buffer.ctypes.data
        iov0 = ctypes.addressof(self._iov)
        for i, (start, end) in enumerate(spans):
            self._iov[i].base, self._iov[i].len = base + start, end - start
            hdr = self._msgs[i].hdr
            hdr.iov, hdr.iovlen = iov0 + i * ctypes.sizeof(_Iovec), 1
            if self._name is not None:
                hdr.name, hdr.namelen = ctypes.addressof(self._name), 16
        self._view = buffer.data

    def send(self, fatal: Callable[[int], bool] = lambda e: False) -> tuple[int, int]:
        """Every span once; (datagrams sent, datagrams refused).  Raises OSError if ``fatal``."""
        if not self.batched or _SENDMMSG is None:
            return self._one_by_one(fatal)
        sent = refused = i = 0
        fd, n = self.sock.fileno(), len(self.spans)
        msgs = ctypes.addressof(self._msgs)
        while i < n:
            done = _SENDMMSG(fd, msgs + i * ctypes.sizeof(_Mmsghdr), min(BATCH, n - i), 0)
            if done >= 0:
                sent, i = sent + done, i + done
                continue
            err = ctypes.get_errno()
            if err == errno.EINTR:
                continue
            if fatal(err):
                raise OSError(err, os.strerror(err))
            refused, i = refused + 1, i + 1      # skip the one the kernel refused
        return sent, refused

    def _one_by_one(self, fatal: Callable[[int], bool]) -> tuple[int, int]:
        sent = refused = 0
        for start, end in self.spans:
            try:
                if self.address is None:
                    self.sock.send(self._view[start:end])
                else:
                    self.sock.sendto(self._view[start:end], self.address)
                sent += 1
            except OSError as exc:
                if exc.errno is not None and fatal(exc.errno):
                    raise
                refused += 1
        return sent, refused
