#!/usr/bin/env bash
# How long `intake consolidate` takes on a large legacy database: the seeds'
# fixture (tests/fixtures/consolidate/legacy_untouched.sql) grown on the
# server with generate_series to RECORDS raw import records (half of them in
# v3_raw_import_records), ASSETS assets and as many discovery_assets (half of
# them the same machines), then consolidated. Prints the seconds and the
# client's peak RSS (GNU time).
#
#   benches/consolidate_scale.sh [RECORDS] [ASSETS]   (default: 1000000 100000)
#
# Needs psql and a PostgreSQL server at $INTAKE_TEST_POSTGRES (default
# postgres://postgres@127.0.0.1:5432); creates and drops the database
# intake_consolidate_bench.
set -euo pipefail
records=${1:-1000000}
assets=${2:-100000}
cd "$(dirname "$0")/.."
server=${INTAKE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}
db=intake_consolidate_bench
cargo build --release --quiet --bin intake
psql "$server/postgres" -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql "$server/$db" -q -f tests/fixtures/consolidate/legacy_untouched.sql
psql "$server/$db" -q <<SQL
INSERT INTO raw_import_records (id, data_import_id, client_account_id, engagement_id, record_index, raw_data, created_at)
  SELECT gen_random_uuid(), '00000000-0000-0000-0000-000000000061', '00000000-0000-0000-0000-000000000011',
         '00000000-0000-0000-0000-000000000021', 100 + g, jsonb_build_object('Server Name', 'srv' || g, 'OS', 'Ubuntu 22.04'), now()
  FROM generate_series(1, $records / 2) g;
INSERT INTO v3_raw_import_records (id, import_id, row_number, raw_data, created_at)
  SELECT gen_random_uuid(), '00000000-0000-0000-0000-000000000064', 100 + g, jsonb_build_object('Host', 'v3-' || g), now()
  FROM generate_series(1, $records / 2) g;
INSERT INTO assets (id, client_account_id, engagement_id, asset_type, name, hostname, ip_address, environment, created_at, updated_at)
  SELECT gen_random_uuid(), '00000000-0000-0000-0000-000000000011', '00000000-0000-0000-0000-000000000021',
         CASE WHEN g % 10 = 0 THEN 'Virtual Machine' ELSE 'server' END, 'srv' || g, 'srv' || g,
         '10.' || (g / 65536) || '.' || ((g / 256) % 256) || '.' || (g % 256), CASE WHEN g % 3 = 0 THEN 'PROD' END, now(), now()
  FROM generate_series(1, $assets) g;
INSERT INTO discovery_assets (id, client_account_id, engagement_id, asset_name, asset_type, hostname, created_at)
  SELECT gen_random_uuid(), '00000000-0000-0000-0000-000000000011', '00000000-0000-0000-0000-000000000021',
         CASE WHEN g % 2 = 0 THEN 'srv' || g ELSE 'new' || g END, 'server', CASE WHEN g % 2 = 0 THEN 'srv' || g ELSE 'new' || g END, now()
  FROM generate_series(1, $assets) g;
ANALYZE;
SQL
/usr/bin/time -f "%e s, %M KB peak RSS" ./target/release/intake consolidate -q --database-url "$server/$db" --report /dev/null > /dev/null
psql "$server/postgres" -q -c "DROP DATABASE IF EXISTS $db"
