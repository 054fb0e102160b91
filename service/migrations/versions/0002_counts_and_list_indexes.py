"""counts kept by triggers, and indexes that read a list's page in order

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 14:40:00

What lists and `GET /api/tags` read instead of counting or sorting every matching row:

- counts kept by triggers in the writing transaction: `counters.articles` (all articles),
  `users.articles_count`, `users.favorites_count`, `tags.articles_count` (with `last_used_at`);
- `article_tags.article_created_at` and `favorites.article_created_at`, copies of the article's
  created_at (which never changes), so `?tag=` and `?favorited=` read their page from one index;
- indexes ending in `id`, the tie-break of every list's order.

Safe on a live PostgreSQL with millions of rows, while pods of the previous version still write:
each step is its own short transaction. The columns and the trigger functions come first
(milliseconds); then, table by table, the triggers go on and the counts they keep are computed,
together, under a lock that holds that table's writers back (reads go on; writes to it wait the
second or two the count takes), so every write from then on keeps them; the copies are filled
in batches (a BEFORE INSERT trigger fills them for pods that do not know the column); NOT NULL is proved by a CHECK validated without blocking writes; indexes are built
and dropped CONCURRENTLY. Every step can run again, so a migration that stopped half-way resumes.
`articles.favorites_count` stays with the favourite's own statements, as in the previous version.
"""

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_log = logging.getLogger("alembic.runtime.migration")

# Rows of article_tags and favorites given their copy per statement, by ranges of article ids.
BATCH_ARTICLES = 20_000
# How long a statement waits for a lock before it gives up and is tried again, and how often.
# Short: while a DDL statement waits for its lock, every later reader of the table waits behind it.
LOCK_TIMEOUT = "1s"
LOCK_ATTEMPTS = 60

# name, table, columns (SQL), WHERE clause or None
NEW_INDEXES = [
    ("ix_article_tags_tag_id_listed", "article_tags", "tag_id, article_created_at, article_id", None),
    ("ix_favorites_user_id_listed", "favorites", "user_id, article_created_at, article_id", None),
    ("ix_articles_author_id_created_at_id", "articles", "author_id, created_at, id", None),
    ("ix_comments_article_id_created_at_id", "comments", "article_id, created_at, id", None),
    ("ix_tags_articles_count_name", "tags", "articles_count DESC, name", "articles_count > 0"),
    ("ix_tags_last_used_at", "tags", "last_used_at DESC", "articles_count > 0"),
]
# name, table, columns (SQL): the indexes the new ones make redundant (each is a prefix of one).
OLD_INDEXES = [
    ("ix_article_tags_tag_id", "article_tags", "tag_id"),
    ("ix_articles_author_id_created_at", "articles", "author_id, created_at"),
    ("ix_comments_article_id_created_at", "comments", "article_id, created_at"),
]

POSTGRESQL_COLUMNS = [
    "ALTER TABLE tags ADD COLUMN IF NOT EXISTS articles_count integer NOT NULL DEFAULT 0",
    "ALTER TABLE tags ADD COLUMN IF NOT EXISTS last_used_at timestamp with time zone",
    "ALTER TABLE users ADD COLUMN IF NOT EXISTS articles_count integer NOT NULL DEFAULT 0",
    "ALTER TABLE users ADD COLUMN IF NOT EXISTS favorites_count integer NOT NULL DEFAULT 0",
    "ALTER TABLE article_tags ADD COLUMN IF NOT EXISTS article_created_at timestamp with time zone",
    "ALTER TABLE favorites ADD COLUMN IF NOT EXISTS article_created_at timestamp with time zone",
    """CREATE TABLE IF NOT EXISTS counters (
    name varchar(32) NOT NULL CONSTRAINT pk_counters PRIMARY KEY,
    value bigint NOT NULL
)""",
    "INSERT INTO counters (name, value) VALUES ('articles', 0) ON CONFLICT DO NOTHING",
]

POSTGRESQL_FUNCTIONS = [
    """CREATE OR REPLACE FUNCTION inkwell_count_articles() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE users SET articles_count = articles_count + 1 WHERE id = NEW.author_id;
        UPDATE counters SET value = value + 1 WHERE name = 'articles';
    ELSE
        UPDATE users SET articles_count = articles_count - 1 WHERE id = OLD.author_id;
        UPDATE counters SET value = value - 1 WHERE name = 'articles';
    END IF;
    RETURN NULL;
END $$""",
    """CREATE OR REPLACE FUNCTION inkwell_count_article_tags() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE tags SET articles_count = articles_count + 1, last_used_at = clock_timestamp() WHERE id = NEW.tag_id;
    ELSE
        UPDATE tags SET articles_count = articles_count - 1 WHERE id = OLD.tag_id;
    END IF;
    RETURN NULL;
END $$""",
    """CREATE OR REPLACE FUNCTION inkwell_count_favorites() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE users SET favorites_count = favorites_count + 1 WHERE id = NEW.user_id;
    ELSE
        UPDATE users SET favorites_count = favorites_count - 1 WHERE id = OLD.user_id;
    END IF;
    RETURN NULL;
END $$""",
    """CREATE OR REPLACE FUNCTION inkwell_copy_article_created_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.article_created_at IS NULL THEN
        SELECT created_at INTO NEW.article_created_at FROM articles WHERE id = NEW.article_id;
    END IF;
    RETURN NEW;
END $$""",
]

# Per table: its triggers and the counts they keep, in one transaction (a DO block is one) that
# first locks the table against writers (SHARE ROW EXCLUSIVE; reads go on). Until it commits no
# writer runs a new trigger, so none holds a row this recount updates while it waits for the
# table: installing the triggers first and counting afterwards deadlocked against live traffic
# (a favourite's new trigger locked its user's row, then waited for `articles`, which the recount
# held while it waited for that row). Once it commits, the triggers count every write from there.
POSTGRESQL_COUNTS = [
    """DO $$ BEGIN
    LOCK TABLE articles IN SHARE ROW EXCLUSIVE MODE;
    -- Deferred to the commit: the one row every publication updates is then locked for the
    -- commit alone, and last in every transaction (after tags and users): no deadlock on it.
    DROP TRIGGER IF EXISTS articles_count ON articles;
    CREATE CONSTRAINT TRIGGER articles_count AFTER INSERT OR DELETE ON articles
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION inkwell_count_articles();
    UPDATE counters SET value = (SELECT count(*) FROM articles) WHERE name = 'articles';
    UPDATE users SET articles_count = counted.n
      FROM (SELECT author_id, count(*) AS n FROM articles GROUP BY author_id) AS counted
     WHERE users.id = counted.author_id AND users.articles_count <> counted.n;
    UPDATE users SET articles_count = 0
     WHERE articles_count <> 0 AND NOT EXISTS (SELECT FROM articles WHERE author_id = users.id);
END $$""",
    """DO $$ BEGIN
    LOCK TABLE article_tags IN SHARE ROW EXCLUSIVE MODE;
    CREATE OR REPLACE TRIGGER article_tags_count AFTER INSERT OR DELETE ON article_tags
        FOR EACH ROW EXECUTE FUNCTION inkwell_count_article_tags();
    CREATE OR REPLACE TRIGGER article_tags_article_created_at BEFORE INSERT ON article_tags
        FOR EACH ROW EXECUTE FUNCTION inkwell_copy_article_created_at();
    UPDATE tags SET articles_count = counted.n, last_used_at = counted.last_used
      FROM (SELECT t.tag_id, count(*) AS n, max(a.created_at) AS last_used
              FROM article_tags AS t JOIN articles AS a ON a.id = t.article_id GROUP BY t.tag_id) AS counted
     WHERE tags.id = counted.tag_id;
    UPDATE tags SET articles_count = 0
     WHERE articles_count <> 0 AND NOT EXISTS (SELECT FROM article_tags WHERE tag_id = tags.id);
END $$""",
    """DO $$ BEGIN
    LOCK TABLE favorites IN SHARE ROW EXCLUSIVE MODE;
    CREATE OR REPLACE TRIGGER favorites_count AFTER INSERT OR DELETE ON favorites
        FOR EACH ROW EXECUTE FUNCTION inkwell_count_favorites();
    CREATE OR REPLACE TRIGGER favorites_article_created_at BEFORE INSERT ON favorites
        FOR EACH ROW EXECUTE FUNCTION inkwell_copy_article_created_at();
    UPDATE users SET favorites_count = counted.n
      FROM (SELECT user_id, count(*) AS n FROM favorites GROUP BY user_id) AS counted
     WHERE users.id = counted.user_id AND users.favorites_count <> counted.n;
    UPDATE users SET favorites_count = 0
     WHERE favorites_count <> 0 AND NOT EXISTS (SELECT FROM favorites WHERE user_id = users.id);
END $$""",
]

SQLITE_TRIGGERS = [
    """CREATE TRIGGER articles_count_insert AFTER INSERT ON articles BEGIN
    UPDATE users SET articles_count = articles_count + 1 WHERE id = NEW.author_id;
    UPDATE counters SET value = value + 1 WHERE name = 'articles';
END""",
    """CREATE TRIGGER articles_count_delete AFTER DELETE ON articles BEGIN
    UPDATE users SET articles_count = articles_count - 1 WHERE id = OLD.author_id;
    UPDATE counters SET value = value - 1 WHERE name = 'articles';
END""",
    """CREATE TRIGGER article_tags_count_insert AFTER INSERT ON article_tags BEGIN
    UPDATE tags SET articles_count = articles_count + 1,
                    last_used_at = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE id = NEW.tag_id;
END""",
    """CREATE TRIGGER article_tags_count_delete AFTER DELETE ON article_tags BEGIN
    UPDATE tags SET articles_count = articles_count - 1 WHERE id = OLD.tag_id;
END""",
    """CREATE TRIGGER favorites_count_insert AFTER INSERT ON favorites BEGIN
    UPDATE users SET favorites_count = favorites_count + 1 WHERE id = NEW.user_id;
END""",
    """CREATE TRIGGER favorites_count_delete AFTER DELETE ON favorites BEGIN
    UPDATE users SET favorites_count = favorites_count - 1 WHERE id = OLD.user_id;
END""",
]
SQLITE_TRIGGER_NAMES = [
    "articles_count_insert",
    "articles_count_delete",
    "article_tags_count_insert",
    "article_tags_count_delete",
    "favorites_count_insert",
    "favorites_count_delete",
]

POSTGRESQL_DROPS = [
    "DROP TRIGGER IF EXISTS articles_count ON articles",
    "DROP TRIGGER IF EXISTS article_tags_count ON article_tags",
    "DROP TRIGGER IF EXISTS favorites_count ON favorites",
    "DROP TRIGGER IF EXISTS article_tags_article_created_at ON article_tags",
    "DROP TRIGGER IF EXISTS favorites_article_created_at ON favorites",
    "DROP FUNCTION IF EXISTS inkwell_count_articles()",
    "DROP FUNCTION IF EXISTS inkwell_count_article_tags()",
    "DROP FUNCTION IF EXISTS inkwell_count_favorites()",
    "DROP FUNCTION IF EXISTS inkwell_copy_article_created_at()",
    "DROP TABLE IF EXISTS counters",
    "ALTER TABLE favorites DROP COLUMN IF EXISTS article_created_at",
    "ALTER TABLE article_tags DROP COLUMN IF EXISTS article_created_at",
    "ALTER TABLE users DROP COLUMN IF EXISTS favorites_count",
    "ALTER TABLE users DROP COLUMN IF EXISTS articles_count",
    "ALTER TABLE tags DROP COLUMN IF EXISTS last_used_at",
    "ALTER TABLE tags DROP COLUMN IF EXISTS articles_count",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _downgrade_postgresql()
    else:
        _downgrade_sqlite()


def _upgrade_postgresql() -> None:
    # Every statement in a transaction of its own, so that no lock outlives its statement: one
    # transaction adding the columns held `tags` while it waited for `users`, and a publication
    # holding `users` waited for `tags`: a deadlock.
    with op.get_context().autocommit_block(), _lock_timeout():
        for statement in [*POSTGRESQL_COLUMNS, *POSTGRESQL_FUNCTIONS, *POSTGRESQL_COUNTS]:
            _execute(statement)
        low, high = op.get_bind().execute(sa.text("SELECT min(id), max(id) FROM articles")).one()
        for start in range(low or 0, (high or 0) + 1, BATCH_ARTICLES):
            for table in ("article_tags", "favorites"):
                _execute(
                    f"UPDATE {table} AS t SET article_created_at = a.created_at FROM articles AS a"
                    f" WHERE a.id = t.article_id AND t.article_created_at IS NULL"
                    f" AND t.article_id >= {start} AND t.article_id < {start + BATCH_ARTICLES}"
                )
        for table in ("article_tags", "favorites"):
            check = f"ck_{table}_article_created_at"
            _execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {check}")
            _execute(f"ALTER TABLE {table} ADD CONSTRAINT {check} CHECK (article_created_at IS NOT NULL) NOT VALID")
            _execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {check}")
            # The validated CHECK lets SET NOT NULL skip its scan of the table.
            _execute(f"ALTER TABLE {table} ALTER COLUMN article_created_at SET NOT NULL")
            _execute(f"ALTER TABLE {table} DROP CONSTRAINT {check}")
        for name, table, columns, where in NEW_INDEXES:
            _create_index_concurrently(name, table, columns, where)
        for name, _table, _columns in OLD_INDEXES:
            _execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


@contextlib.contextmanager
def _lock_timeout() -> Iterator[None]:
    """Statements give up waiting for a lock after LOCK_TIMEOUT and are tried again: a DDL statement
    queued behind a long transaction would otherwise hold every later reader of its table back."""
    op.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
    try:
        yield
    finally:
        op.execute("RESET lock_timeout")


def _execute(statement: str, *, before: Callable[[], None] | None = None) -> None:
    """Runs `statement`, tried again while a lock is not granted in LOCK_TIMEOUT; `before` runs
    ahead of each try."""
    for attempt in range(LOCK_ATTEMPTS):
        try:
            if before is not None:
                before()
            started = time.monotonic()
            op.execute(statement)
            _log.info("%.1f s: %s", time.monotonic() - started, " ".join(statement.split())[:100])
            return
        except sa.exc.DBAPIError as exc:
            # lock_not_available: a writer held the table or the row for longer than the timeout.
            if getattr(exc.orig, "sqlstate", None) != "55P03" or attempt == LOCK_ATTEMPTS - 1:
                raise
            _log.info("lock not granted in %s, trying again: %s", LOCK_TIMEOUT, " ".join(statement.split())[:100])
            time.sleep(min(0.2 * 2**attempt, 5.0))


def _create_index_concurrently(name: str, table: str, columns: str, where: str | None) -> None:
    def drop_if_invalid() -> None:
        # A CONCURRENTLY build that was interrupted (a lock timeout included) leaves an invalid
        # index behind: build it again.
        invalid = op.get_bind().execute(
            sa.text(
                "SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = pg_index.indexrelid"
                " WHERE pg_class.relname = :name AND NOT pg_index.indisvalid"
            ),
            {"name": name},
        )
        if invalid.first() is not None:
            _execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")

    predicate = f" WHERE {where}" if where else ""
    _execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({columns}){predicate}", before=drop_if_invalid
    )


def _downgrade_postgresql() -> None:
    with op.get_context().autocommit_block(), _lock_timeout():
        for name, table, columns in OLD_INDEXES:
            _create_index_concurrently(name, table, columns, None)
        for name, _table, _columns, _where in NEW_INDEXES:
            _execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        for statement in POSTGRESQL_DROPS:
            _execute(statement)


def _upgrade_sqlite() -> None:
    # The embedded database has one process and no rolling upgrade: one transaction does it all.
    # Columns go in with ALTER TABLE: a batch operation would copy `tags` and `users` to new tables
    # and drop the old ones, and with foreign keys on, dropping a table deletes the rows that
    # reference it (every article's tags, every article). Only `article_tags` and `favorites`,
    # which nothing references, are copied (SQLite cannot add NOT NULL to a column in place).
    zero = sa.text("0")
    op.add_column("tags", sa.Column("articles_count", sa.Integer(), server_default=zero, nullable=False))
    op.add_column("tags", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("articles_count", sa.Integer(), server_default=zero, nullable=False))
    op.add_column("users", sa.Column("favorites_count", sa.Integer(), server_default=zero, nullable=False))
    for table in ("article_tags", "favorites"):
        op.add_column(table, sa.Column("article_created_at", sa.DateTime(timezone=True), nullable=True))
        op.execute(
            f"UPDATE {table} SET article_created_at ="
            f" (SELECT created_at FROM articles WHERE articles.id = {table}.article_id)"
        )
        with op.batch_alter_table(table) as batch:
            batch.alter_column("article_created_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_counters"),
    )
    op.execute("INSERT INTO counters (name, value) SELECT 'articles', count(*) FROM articles")
    op.execute("UPDATE users SET articles_count = (SELECT count(*) FROM articles WHERE author_id = users.id)")
    op.execute("UPDATE users SET favorites_count = (SELECT count(*) FROM favorites WHERE user_id = users.id)")
    op.execute(
        "UPDATE tags SET articles_count = (SELECT count(*) FROM article_tags WHERE tag_id = tags.id),"
        " last_used_at = (SELECT max(article_created_at) FROM article_tags WHERE tag_id = tags.id)"
    )
    for name, _table, _columns in OLD_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    for name, table, columns, where in NEW_INDEXES:
        predicate = f" WHERE {where}" if where else ""
        op.execute(f"CREATE INDEX {name} ON {table} ({columns}){predicate}")
    for trigger in SQLITE_TRIGGERS:
        op.execute(trigger)


def _downgrade_sqlite() -> None:
    # ALTER TABLE DROP COLUMN (SQLite 3.35+), never a copy of a referenced table: see the upgrade.
    for name in SQLITE_TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for name, _table, _columns, _where in NEW_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    for name, table, columns in OLD_INDEXES:
        op.execute(f"CREATE INDEX {name} ON {table} ({columns})")
    op.drop_table("counters")
    for table, column in [
        ("favorites", "article_created_at"),
        ("article_tags", "article_created_at"),
        ("users", "favorites_count"),
        ("users", "articles_count"),
        ("tags", "last_used_at"),
        ("tags", "articles_count"),
    ]:
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
