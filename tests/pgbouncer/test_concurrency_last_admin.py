"""tests/concurrency/test_last_admin.py again, through PgBouncer (conftest.py): the admins' rows are
locked inside one transaction, which transaction pooling keeps on one server connection."""

from tests.concurrency.test_last_admin import *  # noqa: F403
