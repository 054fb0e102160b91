"""The `inkwell` command: serve, migrate, seed and set-role, for developers and for the container."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from service.auth.roles import Role
from service.config import get_settings

app = typer.Typer(help="Inkwell: a RealWorld Conduit API.", no_args_is_help=True, add_completion=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development)")] = False,
) -> None:
    """Serve the API with uvicorn (graceful on SIGTERM; multi-worker metrics)."""
    from service.observability.logging import configure_logging
    from service.serving import serve as run_server

    settings = get_settings()  # fail fast on bad settings, before forking workers
    configure_logging(settings)  # the supervisor's own lines are JSON too
    run_server(settings, host=host, port=port, workers=workers, reload=reload)


@app.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Upgrade the database schema (Alembic) to REVISION."""
    from service.migrate import upgrade

    upgrade(get_settings().database_url, revision)
    typer.echo(f"database at {revision}")


@app.command()
def seed(
    users: Annotated[int, typer.Option(min=1, help="Number of users")] = 10,
    articles: Annotated[int, typer.Option(min=0, help="Number of articles")] = 50,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data")] = 42,
    password: Annotated[str, typer.Option(help="Password of every seeded user")] = "inkwell-demo",  # noqa: S107 - demo data
) -> None:
    """Fill the database with a deterministic demo data set (users, articles, tags, comments, favourites, follows)."""
    from service.seed import SeedSize, run_seed

    size = SeedSize.scaled(users=users, articles=articles)
    summary = asyncio.run(run_seed(get_settings(), size=size, seed=seed, password=password))
    typer.echo(summary)


@app.command("set-role")
def set_role(
    username: str,
    role: Annotated[Role, typer.Argument(help="viewer, editor or admin")],
) -> None:
    """Give USERNAME a role: how the first admin is made."""
    from service.seed import assign_role

    if not asyncio.run(assign_role(get_settings(), username, role)):
        typer.echo(f"no user named {username!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{username} is now {role.value}")
