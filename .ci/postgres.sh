#!/usr/bin/env bash
# The PostgreSQL server tests/sync.rs needs on 127.0.0.1:5432 (trust auth for the
# postgres user, as on the CI machine): installed from Debian's package if
# missing, started if down. INTAKE_TEST_POSTGRES points the tests elsewhere.
set -euo pipefail
if [ -n "${INTAKE_TEST_POSTGRES:-}" ]; then exit 0; fi
if ! command -v pg_ctlcluster >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  for _ in $(seq 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432
