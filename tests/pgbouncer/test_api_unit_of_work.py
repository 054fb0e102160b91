"""tests/api/test_unit_of_work.py again, through PgBouncer (conftest.py)."""

from tests.api.test_unit_of_work import *  # noqa: F403
