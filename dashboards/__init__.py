"""Inkwell's Grafana dashboards and Prometheus rules, generated from one config (dashboards.config)."""
