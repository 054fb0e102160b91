"""A real Prometheus for tests: the launcher the dashboards' local stack uses (dashboards/local.py)."""

from dashboards.local import local_rule_files, prometheus, query

__all__ = ["local_rule_files", "prometheus", "query"]
