"""Timeouts that a busy event loop does not trip: a dependency is given up on when it has not
answered while this process was able to notice, not merely after so much wall-clock time.

asyncio's timeouts (and redis-py's `socket_timeout`, which is one) count wall-clock time. When the
loop is held (a flood of requests, CPU-bound work between awaits), a reply that arrived in a
millisecond is only read once the loop gets back to it, and by then the deadline has passed too:
the timeout wins, and a dependency that answered in time is taken for an outage. That is how a
saturated process answered writes with 503 (issue 14): the cache's invalidation before a commit
timed out on a Redis that was up.

`responsive_timeout` checks the time left every `seconds / 5`; a check that runs late (the loop
was busy elsewhere) charges one interval, not the time it was late by. An idle loop gives up after
`seconds`, as a plain timeout would; a held loop gives up only once the dependency has had
`seconds` of the loop's attention and still not answered.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

# Of the timeout: how often the time left is checked, and so what a late check is charged.
_CHECKS = 5


class responsive_timeout:  # noqa: N801 - used like asyncio.timeout, a context manager
    """`async with responsive_timeout(0.5):` raises TimeoutError when the block has not finished
    within 0.5 s of the loop's attention (see the module's docstring)."""

    __slots__ = ("_check", "_handle", "_last", "_left", "_loop", "_timeout")

    def __init__(self, seconds: float) -> None:
        self._left = seconds
        self._check = seconds / _CHECKS
        self._handle: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> responsive_timeout:
        self._loop = asyncio.get_running_loop()
        self._timeout = asyncio.timeout(None)
        await self._timeout.__aenter__()
        self._last = self._loop.time()
        self._handle = self._loop.call_at(self._last + self._check, self._tick)
        return self

    def _tick(self) -> None:
        now = self._loop.time()
        # Late by however long the loop was held: that time was not the dependency's to answer in.
        self._left -= min(now - self._last, self._check)
        self._last = now
        if self._left <= 0:
            self._handle = None
            self._timeout.reschedule(now)  # expires at once: the block is cancelled, TimeoutError
        else:
            self._handle = self._loop.call_at(now + min(self._check, self._left), self._tick)

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        # Turns the cancellation it caused into TimeoutError, and passes anything else on.
        await self._timeout.__aexit__(kind, error, traceback)
