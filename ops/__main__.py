"""`python -m ops`, for when the console script is not on PATH (a checkout, a debug pod)."""

from ops.cli import app

app(prog_name="inkwell-ops")
