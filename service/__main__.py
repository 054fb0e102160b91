"""`python -m service` is the `inkwell` command."""

from service.cli import app

app(prog_name="inkwell")
