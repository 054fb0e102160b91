"""The scale benchmark's data sets, made by SQL at the real schema in seconds to minutes.

One shape at every size, so that a page of any list asks the same of both data sets and only the
data grows: N articles of about 1 KB by N/10 users, N/200 tags (three per article), two comments
and five favourites per article on average, five follows per user; and the few rows every
endpoint is measured on, in the same proportions at each size:

| name          | what                                                  | at 10k | at 1M   |
|---------------|-------------------------------------------------------|--------|---------|
| `popular`     | the tag on one article in ten                         | 1,000  | 100,000 |
| `prolific`    | the author of one article in a hundred                | 100    | 10,000  |
| `fan`         | the user who favourited one article in a hundred      | 100    | 10,000  |
| `reader`      | the signed-in user, following 500 authors             | 500    | 500     |
| `hot-article` | the article with the most comments (N/50, at least the page cap) | 500 | 20,000 |

Rows go in with the triggers off (`session_replication_role = replica`), then every kept count is
computed from the rows in one pass, and `check()` proves them equal to a recount.
"""

from __future__ import annotations

from dataclasses import dataclass

# Users 1 to 3 have parts to play; the others are everyone else.
READER, PROLIFIC, FAN = 1, 2, 3
FIRST_USER = 4
FOLLOWED_BY_READER = 500
PASSWORD = "inkwell-demo"  # noqa: S105 - the data set's users sign in with it


@dataclass(frozen=True)
class Size:
    name: str
    articles: int

    @property
    def users(self) -> int:
        return max(self.articles // 10, FIRST_USER + FOLLOWED_BY_READER)

    @property
    def tags(self) -> int:
        return max(self.articles // 200, 8)

    @property
    def hot_comments(self) -> int:
        # At least the cap of one comments response, so both sizes answer a full page.
        return max(self.articles // 50, 500)


SMALL = Size("10k", 10_000)
LARGE = Size("1m", 1_000_000)


def fill_sql(size: Size, password_hash: str, *, kept_counts: bool = True) -> str:
    """The statements that fill an empty, migrated database with `size` (one transaction).
    `kept_counts`: the schema has the kept counts and copies (migration 0002); without them, an
    earlier schema's columns alone (for an after/before comparison)."""
    n, users, tags = size.articles, size.users, size.tags
    copy, copied = (", article_created_at", ", a.created_at") if kept_counts else ("", "")
    others = users - FIRST_USER + 1  # the users with no part to play
    spread = tags - 1  # the tags but `popular` (tag 1)
    # Numbers and a hash of our own: nothing here comes from input.
    return f"""
SET session_replication_role = replica;
SET synchronous_commit = off;
INSERT INTO users (id, username, email, password_hash, bio, image, role, is_active, created_at, updated_at)
SELECT i,
       CASE i WHEN {READER} THEN 'reader' WHEN {PROLIFIC} THEN 'prolific' WHEN {FAN} THEN 'fan'
              ELSE 'user' || i END,
       CASE i WHEN {READER} THEN 'reader' WHEN {PROLIFIC} THEN 'prolific' WHEN {FAN} THEN 'fan'
              ELSE 'user' || i END || '@inkwell.test',
       '{password_hash}', 'A bio of user ' || i, NULL, 'editor', true,
       timestamptz '2020-01-01' + i * interval '1 second', timestamptz '2020-01-01' + i * interval '1 second'
  FROM generate_series(1, {users}) AS i;
INSERT INTO tags (id, name) SELECT i, CASE WHEN i = 1 THEN 'popular' ELSE 'tag' || i END
  FROM generate_series(1, {tags}) AS i;
INSERT INTO articles (id, slug, title, description, body, author_id, favorites_count, created_at, updated_at)
SELECT i,
       CASE WHEN i = {n} / 2 THEN 'hot-article' ELSE 'article-' || i END,
       'Article number ' || i, 'What article ' || i || ' is about',
       repeat('Words of article ' || i || ' in a body about one kilobyte long. ', 18),
       CASE WHEN i % 100 = 0 THEN {PROLIFIC} ELSE {FIRST_USER} + (i::bigint * 7919) % {others} END,
       0,
       timestamptz '2021-01-01' + i * interval '10 seconds', timestamptz '2021-01-01' + i * interval '10 seconds'
  FROM generate_series(1, {n}) AS i;
INSERT INTO article_tags (article_id, tag_id, position{copy})
SELECT a.id,
       CASE WHEN k = 0 AND a.id % 10 = 0 THEN 1 ELSE 2 + (a.id + k * ({spread} / 3)) % {spread} END,
       k{copied}
  FROM articles AS a CROSS JOIN generate_series(0, 2) AS k;
INSERT INTO comments (id, body, article_id, author_id, created_at, updated_at)
SELECT i, 'Comment ' || i || ', a sentence or two of reply to the article above it.',
       CASE WHEN i <= {size.hot_comments} THEN {n} / 2 ELSE 1 + i % {n} END,
       {FIRST_USER} + (i::bigint * 104729) % {others},
       timestamptz '2022-01-01' + i * interval '1 second', timestamptz '2022-01-01' + i * interval '1 second'
  FROM generate_series(1, {2 * n}) AS i;
INSERT INTO favorites (user_id, article_id{copy})
SELECT {FIRST_USER} + (a.id + k * ({others} / 5)) % {others}, a.id{copied}
  FROM articles AS a CROSS JOIN generate_series(0, 4) AS k
UNION ALL
SELECT {FAN}, a.id{copied} FROM articles AS a WHERE a.id % 100 = 0;
INSERT INTO follows (follower_id, followee_id)
SELECT {READER}, {FIRST_USER} + i FROM generate_series(0, {FOLLOWED_BY_READER - 1}) AS i
UNION ALL
SELECT u, {FIRST_USER} + (u + k * ({others} / 5)) % {others}
  FROM generate_series({FIRST_USER}, {users}) AS u CROSS JOIN generate_series(1, 5) AS k
 WHERE {FIRST_USER} + (u + k * ({others} / 5)) % {others} <> u;
{FAVORITES_RECOUNT}
{KEPT_RECOUNT if kept_counts else ""}
SELECT setval(pg_get_serial_sequence('users', 'id'), {users});
SELECT setval(pg_get_serial_sequence('articles', 'id'), {n});
SELECT setval(pg_get_serial_sequence('tags', 'id'), {tags});
SELECT setval(pg_get_serial_sequence('comments', 'id'), {2 * n});
SET session_replication_role = origin;
"""  # noqa: S608


# Every kept count from the rows, in one pass per table: the one every schema has, then the rest.
FAVORITES_RECOUNT = """
UPDATE articles SET favorites_count = c.n
  FROM (SELECT article_id, count(*) AS n FROM favorites GROUP BY article_id) AS c WHERE articles.id = c.article_id;
"""
KEPT_RECOUNT = """
UPDATE users SET articles_count = c.n
  FROM (SELECT author_id, count(*) AS n FROM articles GROUP BY author_id) AS c WHERE users.id = c.author_id;
UPDATE users SET favorites_count = c.n
  FROM (SELECT user_id, count(*) AS n FROM favorites GROUP BY user_id) AS c WHERE users.id = c.user_id;
UPDATE tags SET articles_count = c.n, last_used_at = c.last_used
  FROM (SELECT tag_id, count(*) AS n, max(article_created_at) AS last_used FROM article_tags GROUP BY tag_id) AS c
 WHERE tags.id = c.tag_id;
UPDATE counters SET value = (SELECT count(*) FROM articles) WHERE name = 'articles';
"""


def check_sql(*, kept_counts: bool = True) -> str:
    """The kept counts that disagree with a recount of the rows: none, on a consistent database."""
    return (FAVORITES_CHECK + KEPT_CHECK if kept_counts else FAVORITES_CHECK) + " LIMIT 10"


FAVORITES_CHECK = """
SELECT 'articles ' || id FROM articles AS a
 WHERE favorites_count <> (SELECT count(*) FROM favorites WHERE article_id = a.id)
"""
KEPT_CHECK = """
UNION ALL
SELECT 'user ' || id FROM users AS u
 WHERE articles_count <> (SELECT count(*) FROM articles WHERE author_id = u.id)
    OR favorites_count <> (SELECT count(*) FROM favorites WHERE user_id = u.id)
UNION ALL
SELECT 'tag ' || id FROM tags AS t WHERE articles_count <> (SELECT count(*) FROM article_tags WHERE tag_id = t.id)
UNION ALL
SELECT 'counter articles' FROM counters WHERE name = 'articles' AND value <> (SELECT count(*) FROM articles)
UNION ALL
SELECT 'copy ' || t.article_id FROM article_tags AS t JOIN articles AS a ON a.id = t.article_id
 WHERE t.article_created_at <> a.created_at
UNION ALL
SELECT 'copy ' || f.article_id FROM favorites AS f JOIN articles AS a ON a.id = f.article_id
 WHERE f.article_created_at <> a.created_at
"""
