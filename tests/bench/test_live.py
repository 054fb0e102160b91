"""bench.live's own pieces, which its figures rest on: the bare broadcast reaches every socket, and the
client's frame reader counts each frame once, when it is whole, whatever the reads cut it into.

A reader that counted a frame split across two reads twice, or never, would end a fan-out early or
time it out; one that stamped a frame at its first bytes would shorten the lags."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator

import httpx
import pytest

import launch
from bench.live import FanOut, Readers, Stamping, target
from tests.support.server import server_env


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """bench.live's baseline app, served by bench.serve as the benchmark serves it."""
    port = launch.free_port()
    with launch.running(
        [sys.executable, "-m", "bench.serve", "--app", "bench.live:bare_app", "--port", str(port)],
        what="the bare broadcast app",
        log=tmp_path_factory.mktemp("bare") / "bare.log",
        ready=launch.listening(port),
        env=server_env(),
    ):
        yield f"http://127.0.0.1:{port}"


def frame(payload: bytes, opcode: int = 1) -> bytes:
    """A server's frame: final, unmasked."""
    if len(payload) < 126:
        return bytes([0x80 | opcode, len(payload)]) + payload
    return bytes([0x80 | opcode, 126]) + len(payload).to_bytes(2, "big") + payload


def test_every_socket_gets_each_broadcast_once_stamped_after_it_was_sent(bare: str) -> None:
    async def run() -> list[FanOut]:
        readers = Readers()
        reach = target("bare", bare, token="", slug="")
        async with httpx.AsyncClient(timeout=60) as client:
            await readers.open(reach, 40)
            fanouts = [(await readers.fan_out(reach, client, f"smoke-{n}"))[1] for n in range(3)]
            await readers.close()
        return fanouts

    fanouts = asyncio.run(run())
    assert [len(f.arrivals) for f in fanouts] == [40, 40, 40]
    for fanout in fanouts:
        # The bare app's clock before sending (to the millisecond, truncated) precedes every arrival.
        assert all(committed <= arrived for arrived, committed in fanout.arrivals)


def test_a_frame_cut_across_reads_is_counted_once_when_whole_and_other_frames_are_not() -> None:
    readers = Readers()
    fanout = FanOut(b'"wanted"', expected=2)
    readers.current = fanout
    stamping = Stamping(readers)
    long_body = "x" * 300  # over 125 bytes: the 16-bit length form
    wanted = json.dumps({"id": "1700000000123-0", "comment": {"body": "wanted", "pad": long_body}})
    other = json.dumps({"id": "1700000000124-0", "comment": {"body": "other"}})
    data = frame(b"", opcode=9) + frame(other.encode()) + frame(wanted.encode())
    cut = len(data) - 100
    stamping.data_received(data[:cut])
    assert fanout.arrivals == []  # the wanted frame is not whole yet
    stamping.data_received(data[cut:] + frame(json.dumps({"id": "1700000000125-1", "x": "wanted"}).encode()))
    assert len(fanout.arrivals) == 2
    assert [committed for _, committed in fanout.arrivals] == [1700000000.123, 1700000000.125]
    assert fanout.done.is_set()
    assert stamping.buffer == b""
