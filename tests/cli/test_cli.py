"""The `inkwell` command as an operator runs it: real processes, on the embedded SQLite database."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from launch import free_port, wait_for_port
from tests.support.server import CHEAP_ARGON2, INKWELL


def _env(db: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INKWELL_")}
    return env | CHEAP_ARGON2 | {"INKWELL_DATABASE_URL": f"sqlite+aiosqlite:///{db}"} | extra


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*INKWELL, *args], env=env, capture_output=True, text=True, timeout=120)


def _dump(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT a.slug, a.title, a.favorites_count, u.username, "
            "(SELECT group_concat(t.name, ',') FROM article_tags at JOIN tags t ON t.id = at.tag_id "
            " WHERE at.article_id = a.id ORDER BY at.position) "
            "FROM articles a JOIN users u ON u.id = a.author_id ORDER BY a.id"
        ).fetchall()


def _count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_migrate_then_seed_gives_the_same_data_for_the_same_seed(tmp_path: Path) -> None:
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    for db in (first, second):
        assert _run(["migrate"], _env(db)).returncode == 0
        result = _run(["seed", "--users", "6", "--articles", "25", "--seed", "7"], _env(db))
        assert result.returncode == 0, result.stderr
        assert "seeded 6 users" in result.stdout
    assert _dump(first) == _dump(second)
    assert len(_dump(first)) == 25
    assert (_count(first, "comments"), _count(first, "favorites"), _count(first, "follows")) == (50, 75, 30)
    with sqlite3.connect(first) as conn:
        stored = conn.execute("SELECT sum(favorites_count) FROM articles").fetchone()[0]
    assert stored == 75  # the denormalised counts match the favourites table


def test_seed_refuses_a_database_that_already_has_users(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    assert _run(["migrate"], _env(db)).returncode == 0
    assert _run(["seed", "--users", "2", "--articles", "1"], _env(db)).returncode == 0
    again = _run(["seed", "--users", "2", "--articles", "1"], _env(db))
    assert again.returncode != 0
    assert "already has users" in again.stderr


def test_set_role_promotes_an_existing_user_and_fails_for_an_unknown_one(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    assert _run(["migrate"], _env(db)).returncode == 0
    assert _run(["seed", "--users", "3", "--articles", "1"], _env(db)).returncode == 0
    assert _run(["set-role", "user002", "viewer"], _env(db)).returncode == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT role FROM users WHERE username = 'user002'").fetchone()[0] == "viewer"
    unknown = _run(["set-role", "nobody", "admin"], _env(db))
    assert unknown.returncode == 1
    assert "no user named" in unknown.stderr


def test_development_secret_is_refused_outside_development(tmp_path: Path) -> None:
    result = _run(["migrate"], _env(tmp_path / "p.db", INKWELL_ENVIRONMENT="production"))
    assert result.returncode != 0
    assert "INKWELL_SECRET_KEY" in result.stderr


def test_serve_answers_the_api_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    env = _env(db)
    assert _run(["migrate"], env).returncode == 0
    port = free_port()
    process = subprocess.Popen(
        [*INKWELL, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port, timeout=60)
        base = f"http://127.0.0.1:{port}"
        user = {"username": "served", "email": "served@example.org", "password": "served-password"}
        with httpx.Client(base_url=base, timeout=30) as client:
            registered = client.post("/api/users", json={"user": user})
            assert registered.status_code == 201
            token = registered.json()["user"]["token"]
            article = {"title": "Served", "description": "d", "body": "b", "tagList": ["x"]}
            created = client.post(
                "/api/articles", json={"article": article}, headers={"Authorization": f"Token {token}"}
            )
            assert created.status_code == 201
            assert client.get("/api/tags").json() == {"tags": ["x"]}
            assert client.get("/docs").status_code == 200
            assert client.get("/readyz").json() == {"status": "ok"}
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "Traceback" not in output


@pytest.mark.parametrize("command", ["serve", "migrate", "seed", "set-role"])
def test_every_subcommand_documents_itself(command: str) -> None:
    result = subprocess.run([*INKWELL, command, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "Usage" in result.stdout
    assert json.dumps(command).strip('"') in result.stdout
