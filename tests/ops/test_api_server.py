"""A bad API server, as an operator meets one: a kubeconfig naming a port nothing listens on, and a server
that accepts the connection and never says a word. Each must end in one line on stderr and exit 1, within
the request timeout, rather than urllib3's traceback or a terminal that never returns; a kubeconfig that
is missing or not a kubeconfig exits 2 and names its path. Also the config file's request-timeout, under
the flag and the environment (flags > env > file), measured on the silent server, where it is visible.

The CLI runs as a subprocess, as typed: a hang then fails the test at its timeout instead of holding it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.kube import ROOT

# Far above any timeout under test: reaching it means the CLI hung.
HANG = 120


def _kubeconfig(path: Path, server: str, *, context: str = "bad") -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "bad", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "bad", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": context, "context": {"cluster": "bad", "user": "bad", "namespace": "inkwell"}}],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


def ops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("INKWELL_OPS_", "KUBECONFIG"))}
    return subprocess.run(
        [sys.executable, "-m", "ops", *args],
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
        cwd=ROOT,
        env={**clean, "INKWELL_OPS_CONFIG": os.devnull, **(env or {})},
    )


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound and never listened on: the kernel refuses every connection to it, and no other
    process can take it while the test runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts every connection and never sends a byte (a hung API server, or a black-holing proxy)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        for conn in held:
            conn.close()


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


def test_a_closed_port_is_one_line_and_exit_1(tmp_path: Path, closed_port: int) -> None:
    config = _kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{closed_port}")
    result = ops("--kubeconfig", config, "status")
    line = _one_line(result)
    assert result.returncode == 1
    assert line == (
        f"error: the connection to the API server at https://127.0.0.1:{closed_port} was refused: "
        "is the cluster up, and is this the right kubeconfig and context?"
    )


def test_a_server_that_never_answers_gives_up_at_the_request_timeout(
    tmp_path: Path, silent_server: int
) -> None:
    config = _kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{silent_server}")
    result = ops("--kubeconfig", config, "--request-timeout", "1s", "history")
    line = _one_line(result)
    assert result.returncode == 1
    assert line.startswith(
        f"error: the API server at https://127.0.0.1:{silent_server} did not answer within 1s"
    )


@pytest.mark.slow
def test_every_request_has_a_default_timeout(tmp_path: Path, silent_server: int) -> None:
    """No flag, no env, no file: the default (30 s), where the client's own would wait forever."""
    config = _kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{silent_server}")
    result = ops("--kubeconfig", config, "status")
    assert result.returncode == 1
    assert "did not answer within 30s" in _one_line(result)


def test_request_timeout_precedence_is_flag_then_env_then_file(tmp_path: Path, silent_server: int) -> None:
    config = _kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{silent_server}", context="ctx")
    file = tmp_path / "config.toml"
    file.write_text('[defaults]\nrequest-timeout = "5s"\n[contexts.ctx]\nrequest-timeout = "1s"\n')
    env = {"INKWELL_OPS_CONFIG": str(file)}

    from_file = ops("--kubeconfig", config, "status", env=env)
    assert "did not answer within 1s" in _one_line(from_file)
    from_env = ops("--kubeconfig", config, "status", env=env | {"INKWELL_OPS_REQUEST_TIMEOUT": "1.5"})
    assert "did not answer within 1.5s" in _one_line(from_env)
    from_flag = ops(
        "--kubeconfig", config, "--request-timeout", "500ms", "status",
        env=env | {"INKWELL_OPS_REQUEST_TIMEOUT": "1.5"},
    )  # fmt: skip
    assert "did not answer within 0.5s" in _one_line(from_flag)
    # Another context gets only [defaults].
    other = _kubeconfig(tmp_path / "other", f"https://127.0.0.1:{silent_server}", context="elsewhere")
    from_defaults = ops("--kubeconfig", other, "--request-timeout", "0.8", "status", env=env)
    assert "did not answer within 0.8s" in _one_line(from_defaults)


def test_a_missing_kubeconfig_exits_2_and_names_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "kubeconfig"
    result = ops("--kubeconfig", str(missing), "status")
    assert result.returncode == 2
    assert _one_line(result).startswith(f"error: no usable kubeconfig at {missing}: ")


def test_the_kubeconfig_from_the_environment_is_named_too(tmp_path: Path) -> None:
    missing = tmp_path / "from-env"
    result = ops("status", env={"KUBECONFIG": str(missing)})
    assert result.returncode == 2
    assert _one_line(result).startswith(f"error: no usable kubeconfig at {missing}: ")


@pytest.mark.parametrize("content", ["- just\n- a list\n", "plain text, not YAML: [", "{}\n"])
def test_a_file_that_is_not_a_kubeconfig_exits_2(tmp_path: Path, content: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(content)
    result = ops("--kubeconfig", str(path), "status")
    assert result.returncode == 2, result.stderr
    assert _one_line(result).startswith(f"error: no usable kubeconfig at {path}: ")


def test_an_unknown_context_exits_2(tmp_path: Path, closed_port: int) -> None:
    config = _kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{closed_port}")
    result = ops("--kubeconfig", config, "--context", "nope", "status")
    assert result.returncode == 2
    line = _one_line(result)
    assert line.startswith(f"error: no usable kubeconfig at {config}: ")
    assert "nope" in line


@pytest.mark.parametrize("value", ["soon", "5x", "-1s", ""])
def test_a_bad_request_timeout_is_a_usage_error(tmp_path: Path, closed_port: int, value: str) -> None:
    config = _kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{closed_port}")
    result = ops("--kubeconfig", config, "--request-timeout", value, "status")
    assert result.returncode == 2
    assert "--request-timeout" in result.stderr
    assert "refused" not in result.stderr


def test_a_broken_config_file_exits_2_and_names_it(tmp_path: Path, closed_port: int) -> None:
    config = _kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{closed_port}")
    file = tmp_path / "config.toml"
    file.write_text('[contexts.bad]\nnamespce = "typo"\n')
    result = ops("--kubeconfig", config, "status", env={"INKWELL_OPS_CONFIG": str(file)})
    assert result.returncode == 2
    assert _one_line(result) == (
        f'error: config file {file}: [contexts."bad"] has unknown key(s) namespce '
        "(known: namespace, release, prometheus, request-timeout)"
    )


def test_prometheus_comes_from_the_config_file_unless_given(tmp_path: Path, closed_port: int) -> None:
    config = _kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{closed_port}")
    file = tmp_path / "config.toml"
    file.write_text(f'[contexts.bad]\nprometheus = "http://127.0.0.1:{closed_port}"\n')
    env = {"INKWELL_OPS_CONFIG": str(file)}
    # -n given, so slo needs no cluster: the only address it tries is the file's Prometheus.
    from_file = ops("--kubeconfig", config, "-n", "x", "slo", env=env)
    assert from_file.returncode == 1
    assert f"cannot reach Prometheus at http://127.0.0.1:{closed_port}" in from_file.stderr
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        port = other.getsockname()[1]
        from_env = ops(
            "--kubeconfig", config, "-n", "x", "slo",
            env=env | {"INKWELL_OPS_PROMETHEUS": f"http://127.0.0.1:{port}"},
        )  # fmt: skip
    assert f"cannot reach Prometheus at http://127.0.0.1:{port}" in from_env.stderr
