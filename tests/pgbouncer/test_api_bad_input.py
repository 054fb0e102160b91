"""tests/api/test_bad_input.py again, through PgBouncer (conftest.py)."""

from tests.api.test_bad_input import *  # noqa: F403
