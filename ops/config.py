"""Where the global settings come from when a flag does not give them: the environment, then a per-context
config file, then the kubeconfig's context (namespace) or a built-in default. Precedence is flags > env >
file, as kubectl and helm have it, so a file never overrides what an operator typed.

The file (``$INKWELL_OPS_CONFIG``, else ``$XDG_CONFIG_HOME/inkwell-ops/config.toml``, else
``~/.config/inkwell-ops/config.toml``) holds a table per kube context, plus ``[defaults]`` for any::

    [defaults]
    request-timeout = "20s"

    [contexts."kind-inkwell"]
    namespace = "inkwell"
    release = "inkwell"
    prometheus = "http://127.0.0.1:9090"

This module reads the kubeconfig's current context with PyYAML itself: it runs before every command,
`--help` included, which must not pay for importing the Kubernetes client."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# Seconds per API request when none is given: long enough for a busy API server's LIST, short enough that
# an operator sees a hung one named rather than a terminal that never returns (kubectl takes about 50 s).
DEFAULT_REQUEST_TIMEOUT = 30.0

KEYS = ("namespace", "release", "prometheus", "request-timeout")

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class ConfigError(Exception):
    """The config file cannot be used; the message names it."""


def parse_duration(value: str) -> float:
    """Seconds, from kubectl's `--request-timeout` syntax: a Go duration (`5s`, `1m30s`, `500ms`) or a bare
    number of seconds; 0 means no timeout."""
    text = value.strip()
    if re.fullmatch(r"\d+(?:\.\d*)?", text):
        return float(text)
    position, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise ValueError(f"{value!r} is not a duration (e.g. 30s, 1m, 500ms; 0 for none)")
    return total


def config_path() -> Path:
    explicit = os.environ.get("INKWELL_OPS_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    return Path(base) / "inkwell-ops" / "config.toml"


@dataclass(frozen=True)
class Defaults:
    """What the file says for one context: None where it says nothing."""

    namespace: str | None = None
    release: str | None = None
    prometheus: str | None = None
    request_timeout: float | None = None
    source: str | None = None  # "<path> [contexts.<name>]", for messages


def _table(path: Path, name: str, table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{name}] is not a table")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise ConfigError(
            f"{path}: [{name}] has unknown key(s) {', '.join(unknown)} (known: {', '.join(KEYS)})"
        )
    for key, value in table.items():
        if not isinstance(value, str):
            raise ConfigError(f"{path}: [{name}] {key} must be a string")
    return table


def load(context: str | None, path: Path | None = None) -> Defaults:
    """The defaults for `context`: its own table over [defaults]. A missing file is no defaults, unless it
    was named by $INKWELL_OPS_CONFIG: a file asked for and absent is a mistake to report."""
    path = path or config_path()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        if os.environ.get("INKWELL_OPS_CONFIG"):
            raise ConfigError(f"{path}: no such file ($INKWELL_OPS_CONFIG)") from None
        return Defaults()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"defaults", "contexts"})
    if unknown:
        raise ConfigError(f"{path}: unknown table(s) {', '.join(unknown)} (known: defaults, contexts)")
    merged = dict(_table(path, "defaults", data.get("defaults", {})))
    contexts = data.get("contexts", {})
    if not isinstance(contexts, dict):
        raise ConfigError(f"{path}: [contexts] is not a table")
    source = f"{path} [defaults]"
    if context is not None and context in contexts:
        merged |= _table(path, f'contexts."{context}"', contexts[context])
        source = f'{path} [contexts."{context}"]'
    timeout = merged.get("request-timeout")
    try:
        seconds = None if timeout is None else parse_duration(timeout)
    except ValueError as exc:
        raise ConfigError(f"{source}: request-timeout: {exc}") from None
    return Defaults(
        namespace=merged.get("namespace"),
        release=merged.get("release"),
        prometheus=merged.get("prometheus"),
        request_timeout=seconds,
        source=source,
    )


def current_context(kubeconfig: str | None) -> str | None:
    """The kubeconfig's current-context, as kubectl merges $KUBECONFIG (the first file that sets it); None
    when there is no readable kubeconfig, which the connection reports in its own words."""
    files = (kubeconfig or str(Path("~/.kube/config").expanduser())).split(os.pathsep)
    for name in files:
        try:
            data = yaml.safe_load(Path(name).read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and data.get("current-context"):
            return str(data["current-context"])
    return None
