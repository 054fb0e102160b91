"""usernames unique in any case

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 20:00:00

`dupX` and `DUPX` both registered, and profiles, follows and `?author=` could no longer say which
was meant. A unique index on `lower(username)` makes a case variant a clash, on both databases;
names are still stored and shown as typed.

Names that already clash are resolved first: the oldest account (the lowest id) keeps its name,
each later one is renamed to `<name>-<id>` (cut to fit 64 characters), which no registration can
take from it in between since the index then holds. Their owners still log in by email
(docs/accounts.md). On PostgreSQL the index is built CONCURRENTLY, so registrations go on while
it builds; a pod of the previous version that registers a new case variant meanwhile makes the
build fail, and it is resolved and built again.
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_log = logging.getLogger("alembic.runtime.migration")

INDEX = "uq_users_username_lower"
MAX_USERNAME = 64
BUILD_ATTEMPTS = 5


def _rename_case_variants() -> None:
    """Every account whose name another, older account has in some case gets `<name>-<id>`."""
    bind = op.get_bind()
    # Folded by the database's lower(), as the index will fold them (Python's folds more letters).
    clashing = bind.execute(
        sa.text(
            "SELECT id, username, lower(username) FROM users WHERE lower(username) IN"
            " (SELECT lower(username) FROM users GROUP BY lower(username) HAVING count(*) > 1)"
            " ORDER BY lower(username), id"
        )
    ).all()
    kept: set[str] = set()
    for user_id, username, folded in clashing:
        if folded not in kept:
            kept.add(folded)  # the oldest of its group keeps the name
            continue
        for attempt in range(1, 100):
            suffix = f"-{user_id}" if attempt == 1 else f"-{user_id}-{attempt}"
            candidate = username[: MAX_USERNAME - len(suffix)] + suffix
            taken = bind.execute(
                sa.text("SELECT 1 FROM users WHERE lower(username) = lower(:name)"), {"name": candidate}
            ).first()
            if taken is None:
                break
        else:  # pragma: no cover - a hundred names all taken
            raise RuntimeError(f"no free name for user {user_id} ({username!r})")
        bind.execute(
            sa.text("UPDATE users SET username = :name WHERE id = :id"), {"name": candidate, "id": user_id}
        )
        _log.info("user %s renamed from %r to %r: another account has that name in another case", user_id, username, candidate)


def _drop_if_invalid() -> None:
    # An interrupted CONCURRENTLY build leaves an invalid index, which IF NOT EXISTS would keep.
    invalid = op.get_bind().execute(
        sa.text(
            "SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = pg_index.indexrelid"
            " WHERE pg_class.relname = :name AND NOT pg_index.indisvalid"
        ),
        {"name": INDEX},
    )
    if invalid.first() is not None:
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        # The embedded database has one process: resolve and index in one transaction.
        _rename_case_variants()
        op.execute(f"CREATE UNIQUE INDEX {INDEX} ON users (lower(username))")
        return
    with op.get_context().autocommit_block():
        for attempt in range(BUILD_ATTEMPTS):
            _drop_if_invalid()
            _rename_case_variants()
            try:
                op.execute(f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON users (lower(username))")
            except sa.exc.IntegrityError:
                # A case variant registered while the index was built; the build left an invalid
                # index behind.
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
                if attempt == BUILD_ATTEMPTS - 1:
                    raise
                continue
            return


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
        return
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
