"""The scale benchmark's pieces that a run over the goal relies on: its data set's kept counts,
and reading the dominant node of a slow statement out of PostgreSQL's own auto_explain log."""

from __future__ import annotations

from pathlib import Path

from bench import scale, scale_data
from tests.support.postgres import postgres_cluster


def test_the_dominant_node_of_a_logged_plan_is_the_one_with_the_largest_own_time() -> None:
    with postgres_cluster() as cluster:
        cluster.psql("CREATE TABLE t AS SELECT i FROM generate_series(1, 200000) AS i")
        log = Path(cluster.datadir).parent / "postgres.log"
        start = log.stat().st_size
        cluster.psql(
            "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on;"
            " SET auto_explain.log_format = json; SELECT count(*) FROM (SELECT i FROM t ORDER BY i DESC) AS s"
        )
        plans = scale._plans(log.read_text()[start:])
    slowest = max(plans)
    assert "ORDER BY i DESC" in slowest[2]
    # Sorting 200,000 rows takes longer than reading them or counting them.
    assert slowest[1].startswith("Sort "), slowest


def test_both_data_sets_have_the_same_shape_and_consistent_counts() -> None:
    small = scale_data.Size("tiny", 2_000)
    with postgres_cluster() as cluster:
        # Migrated, filled, and every kept count checked against a recount (build refuses otherwise).
        data = scale.build(cluster, small, tree=None)
        counts = cluster.psql(
            "SELECT (SELECT articles_count FROM tags WHERE name = 'popular'),"
            " (SELECT articles_count FROM users WHERE username = 'prolific'),"
            " (SELECT favorites_count FROM users WHERE username = 'fan'),"
            " (SELECT count(*) FROM follows WHERE follower_id = 1),"
            " (SELECT count(*) FROM comments WHERE article_id = (SELECT id FROM articles WHERE slug = 'hot-article'))",
            database=data.database,
        )
    popular, prolific, fan, followed, hot = map(int, counts.strip().split("|"))
    assert (popular, prolific, fan, followed) == (200, 20, 20, scale_data.FOLLOWED_BY_READER)
    # The hot article's own comments, and the few of the rest that land on it too.
    assert small.hot_comments <= hot < small.hot_comments + 10
