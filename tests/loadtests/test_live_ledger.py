"""The live listeners' counting (loadtests/live.py), without sockets: which comments a listener is
owed, what counts as lost, delivered or resynced, the lag reported for each delivery, and the records
of several workers counted together. The run through real sockets is tests/loadtests/test_live_load.py."""

from __future__ import annotations

import json

import pytest

from loadtests import live
from loadtests.live import Ledger, Posted, Subscription, count, live_url, sent_at, stamped


def test_a_comment_posted_after_the_subscription_is_owed_and_one_posted_before_is_not() -> None:
    posts = [
        Posted(1, "popular", sent_at=9.0, answered_at=10.5),  # sent before the subscription
        Posted(2, "popular", sent_at=10.5, answered_at=10.6),  # inside the clock margin: not judged
        Posted(3, "popular", sent_at=12.0, answered_at=12.1),
        Posted(4, "popular", sent_at=13.0, answered_at=13.1),
        Posted(5, "elsewhere", sent_at=12.0, answered_at=12.1),  # an article nobody listens to
    ]
    tally = count(posts, [{"popular": Subscription(since=10.0, received={3})}], margin=1.0)
    assert (tally.expected, tally.delivered, tally.resynced, tally.lost) == (2, 1, 0, 1)
    assert tally.lost_by_article == {"popular": 1}


def test_a_resync_covers_what_was_answered_before_it_only() -> None:
    posts = [Posted(1, "popular", 11.0, 11.5), Posted(2, "popular", 13.0, 13.5)]  # 2: after the resync
    listener = {"popular": Subscription(since=10.0, received=set(), resynced_at=[12.0])}
    tally = count(posts, [listener], margin=0.0)
    assert (tally.delivered, tally.resynced, tally.lost) == (0, 1, 1)


def test_every_listener_is_owed_every_comment_on_its_articles() -> None:
    posts = [Posted(1, "a", 20.0, 20.1), Posted(2, "b", 20.0, 20.1)]
    both = {"a": Subscription(10.0, {1}), "b": Subscription(10.0, {2})}
    one = {"a": Subscription(10.0, set())}
    tally = count(posts, [both, one], margin=1.0)
    assert (tally.listeners, tally.expected, tally.delivered, tally.lost) == (2, 3, 2, 1)


def test_frames_of_comments_nobody_in_the_run_posted_are_foreign() -> None:
    tally = count([Posted(1, "a", 20.0, 20.1)], [{"a": Subscription(10.0, {1, 77})}], margin=1.0)
    assert (tally.expected, tally.delivered, tally.foreign) == (1, 1, 1)


def test_a_workers_records_travel_as_json_and_are_counted_with_the_masters() -> None:
    # A writer on one worker, a listener on another: only counted together does the comment show.
    writer, listener, master = Ledger(), Ledger(), Ledger()
    writer.record("a", 1, 20.0, 20.1)
    listener.close({"a": Subscription(10.0, {1})}, reconnects=1, resyncs=0)
    assert listener.tally().expected == 0
    for worker in (writer, listener):
        master.merge(json.loads(json.dumps(worker.to_json())))
    tally = master.tally()
    assert (tally.listeners, tally.expected, tally.delivered, tally.reconnects) == (1, 1, 1, 1)
    master.reset()  # the next run starts from nothing
    assert (master.tally().listeners, master.tally().expected, master.reconnects) == (0, 0, 0)


def test_each_delivery_is_reported_with_its_lag_from_the_stamp_in_its_body() -> None:
    reported: list[tuple[str, float, int]] = []
    book = Ledger(lambda name, ms, length, error: reported.append((name, ms, length)))
    body = stamped("Latency budget.", 100.0)
    assert sent_at(body) == 100.0
    book.delivered(body, received_at=100.25, length=120)
    book.delivered("A comment from a person, not the load test.", received_at=101.0, length=40)
    assert reported == [("comment.created", 250.0, 120)]


def test_the_socket_url_follows_the_hosts_scheme() -> None:
    assert live_url("http://127.0.0.1:8080/") == "ws://127.0.0.1:8080/api/live"
    assert live_url("https://staging.example") == "wss://staging.example/api/live"


def test_reconnects_back_off_after_closes_in_a_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A socket refused again and again (over the per-IP limit, 4429) is not retried in a tight loop."""
    slept: list[float] = []
    monkeypatch.setattr(live.time, "sleep", slept.append)
    listener = live.Listener("http://127.0.0.1:1", ["a"])
    for _ in range(8):
        listener.back_off()
    base, most = live.RECONNECT_PAUSE_SECONDS, live.RECONNECT_PAUSE_MAX_SECONDS
    for attempt, pause in enumerate(slept):
        wanted = min(base * 2**attempt, most)
        assert wanted * 0.5 <= pause <= wanted * 1.5, (attempt, pause)
    assert slept[-1] <= most * 1.5
