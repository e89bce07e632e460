#!/usr/bin/env bash
# Set up this checkout on Debian 12 / Python 3.11: PostgreSQL server binaries (Debian's packages)
# when none are installed, and the pinned Python dependencies in .venv/. Idempotent and quick when
# everything is already there. Safe to run as root (it then installs packages itself) or as a user
# with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }
if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

# 1. PostgreSQL server (initdb, pg_ctl, pg_basebackup, pg_dump). No cluster is created or started:
#    pgops starts its own on loopback ports.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  say "installing PostgreSQL server packages (postgresql-15)"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  # As the official PostgreSQL Docker image does: postgresql-common first, then tell it not to
  # create (and start) a default cluster, then the server.
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-common >/dev/null
  "${SUDO[@]}" sed -ri 's/#?\s*create_main_cluster\s*=.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      postgresql-15 postgresql-client-15 >/dev/null
fi
# 1b. PgBouncer, the local stack's pooler (pgops starts its own instance on loopback; the package's
#     own service, enabled by Debian on systems that run systemd, is turned off).
if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  say "installing PgBouncer (pgbouncer)"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    "${SUDO[@]}" systemctl disable --now pgbouncer.service >/dev/null 2>&1 || true
  fi
fi
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  say "creating the unprivileged 'postgres' OS user the local servers run as"
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

# 2. Python dependencies, pinned by requirements.lock, into .venv/.
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.lock | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x .venv/bin/invoke ]; then
  say "installing Python dependencies from requirements.lock"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.lock
  echo "$want" > "$stamp"
fi
