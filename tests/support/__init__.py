"""Real components the tests start for themselves (PostgreSQL now; Redis, nginx, Prometheus later)."""
