#!/usr/bin/env bash
# Installs what `make run` and `make test` need on a fresh machine, and nothing twice:
# uv (pinned, in .tools/), the locked virtualenv, and with --test (or --bench, --staging, --preview)
# the Debian packages the suite (or the benchmarks, the staging stack, the dashboards' preview) starts.
# PgBouncer is Debian's (1.18 on bookworm, without prepared statements in transaction pooling: the
# service's INKWELL_DATABASE_POOLER=pgbouncer is made for that, docs/connections.md).
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
UV=.tools/venv/bin/uv

if [ ! -x "$UV" ] || [ "$("$UV" --version | awk '{print $2}')" != "$UV_VERSION" ]; then
  echo "bootstrap: installing uv $UV_VERSION into .tools/"
  python3 -m venv .tools/venv
  .tools/venv/bin/pip install --quiet "uv==$UV_VERSION"
fi

# Every extra: the dev and test environment runs inkwell-ops too (the image installs none).
# Bytecode at install, as pip does: uv does not by default, and where the environment sets
# PYTHONDONTWRITEBYTECODE nothing is cached either, so every `inkwell-ops` run compiled the
# Kubernetes client from source again (1.6 s of a 3.3 s `status`, docs/ops-cli.md#startup).
"$UV" sync --frozen --all-extras --quiet --compile-bytecode

missing=()
has_nginx() { [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null; }
has_pgbouncer() { [ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null; }
if [ "${1:-}" = "--preview" ]; then
  command -v prometheus >/dev/null || missing+=(prometheus)
elif [ "${1:-}" = "--staging" ]; then
  compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || missing+=(postgresql)
  has_pgbouncer || missing+=(pgbouncer)
  command -v runuser >/dev/null || missing+=(util-linux)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v prometheus >/dev/null || missing+=(prometheus)
  has_nginx || missing+=(nginx)
elif [ "${1:-}" = "--test" ] || [ "${1:-}" = "--bench" ]; then
  # pg_ctl is postgresql-15's; psql and pg_basebackup (which copies the tests' replica) come with it,
  # in postgresql-client-15, on which it depends.
  compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || missing+=(postgresql)
  has_pgbouncer || missing+=(pgbouncer)
  command -v runuser >/dev/null || missing+=(util-linux)
  command -v ps >/dev/null || missing+=(procps)
  if [ "${1:-}" = "--test" ] && ! command -v go >/dev/null; then
    echo "bootstrap: the Kubernetes tests build their cluster from source and need Go 1.26+ on PATH" >&2
    exit 1
  fi
  command -v redis-server >/dev/null || missing+=(redis-server)
  if [ "${1:-}" = "--test" ]; then
    { command -v prometheus && command -v promtool; } >/dev/null || missing+=(prometheus)
    has_nginx || missing+=(nginx)
    # The docs pages' test drives it through playwright (tests/docs), offline: no browser download.
    [ -x /usr/bin/chromium ] || missing+=(chromium)
  fi
  if [ "${1:-}" = "--bench" ]; then
    command -v wrk >/dev/null || missing+=(wrk)
    command -v taskset >/dev/null || missing+=(util-linux)
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]} (Debian packages)"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
