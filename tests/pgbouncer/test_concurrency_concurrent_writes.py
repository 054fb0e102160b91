"""tests/concurrency/test_concurrent_writes.py again, through PgBouncer (conftest.py)."""

from tests.concurrency.test_concurrent_writes import *  # noqa: F403
