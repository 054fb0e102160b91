"""A real Prometheus for tests: the dashboards' local one (dashboards/local.py), evaluating the
chart's rules at the pace a test can wait for (launch.prometheus)."""

from dashboards.local import prometheus, query
from launch.prometheus import local_rule_files

__all__ = ["local_rule_files", "prometheus", "query"]
