"""``sendmmsg`` batching: the same datagrams, in the same order, as one ``sendto`` each; refusals
counted and skipped, fatal errors raised."""

from __future__ import annotations

import errno
import socket

import numpy as np
import pytest

from controller.video.batch import BATCH, BatchSender


def _spans(count: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    sizes = 1 + np.arange(count) % 7
    starts = np.concatenate([[0], np.cumsum(sizes + 3)])[:-1]      # 3-byte gaps, never sent
    buffer = np.random.default_rng(count).integers(0, 256, int(starts[-1] + sizes[-1] + 3),
                                                   dtype=np.uint8)
    return buffer, [(int(s), int(s + n)) for s, n in zip(starts, sizes)]


@pytest.fixture
def pair():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    yield tx, rx
    tx.close()
    rx.close()


@pytest.mark.parametrize("batched", [True, False])
def test_every_span_arrives_once_in_order(pair, batched):
    tx, rx = pair
    buffer, spans = _spans(2 * BATCH + 300)           # more than one sendmmsg call
    sender = BatchSender(tx, buffer, spans, rx.getsockname())
    sender.batched = sender.batched and batched
    assert sender.send() == (len(spans), 0)
    got = [rx.recv(64) for _ in spans]
    assert got == [buffer[s:e].tobytes() for s, e in spans]


@pytest.mark.parametrize("batched", [True, False])
def test_refused_datagrams_are_counted_and_skipped(pair, batched):
    tx, _ = pair
    buffer, spans = _spans(40)
    sender = BatchSender(tx, buffer, spans, ("255.255.255.255", 9))   # no SO_BROADCAST: EACCES
    sender.batched = sender.batched and batched
    assert sender.send() == (0, 40)
    with pytest.raises(OSError) as caught:
        sender.send(fatal=lambda err: err == errno.EACCES)
    assert caught.value.errno == errno.EACCES
