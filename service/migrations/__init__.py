"""Alembic migrations, shipped inside the package so `inkwell migrate` works from an installed wheel."""
