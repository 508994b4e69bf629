#!/usr/bin/env bash
# `intake sync` of a generated flow against `psql \copy ... FROM file CSV` of the same
# rows into the same tables of an empty central schema, in the same run.
#
#   benches/compare_psql_copy.sh [ROWS] [RUNS]   (defaults: 1000000 3; target: ratio <= 1.5)
#
# The server is $INTAKE_BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432);
# each run creates and drops two databases. Needs sqlite3 and psql. Exits 1 when the
# target is missed.
set -euo pipefail
rows=${1:-1000000}
runs=${2:-3}
server=${INTAKE_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
cd "$(dirname "$0")/.."
for tool in sqlite3 psql; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install sqlite3 postgresql-client" >&2; exit 2; }
done
cargo build --release --quiet --bin intake --bin gen-cmdb
dir=bench-data
mkdir -p "$dir"
csv="$dir/cmdb_${rows}.csv"
db="$dir/sync_${rows}.db"
[ -s "$csv" ] || ./target/release/gen-cmdb --rows "$rows" --out "$csv"
if [ ! -s "$db" ]; then
  ./target/release/intake --db "$db" import "$csv" --quiet >/dev/null
fi
tables="client_accounts engagements users crewai_flow_state_extensions discovery_flows data_imports import_field_mappings raw_import_records assets asset_dependencies"
# The baseline's input: each table's rows as CSV, in the column order of schema.sql.
for t in $tables; do
  [ -s "$dir/sync_${rows}_$t.csv" ] || sqlite3 -csv "$db" "SELECT * FROM $t" > "$dir/sync_${rows}_$t.csv"
done
copy_script="$dir/sync_copy.psql"
: > "$copy_script"
for t in $tables; do
  echo "\\copy $t FROM '$dir/sync_${rows}_$t.csv' CSV" >> "$copy_script"
done
fresh() {
  psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null
  psql -q -v ON_ERROR_STOP=1 "$server/$1" -f schema.postgres.sql >/dev/null 2>&1
}
now() { date +%s.%N; }
records=$(sqlite3 "$db" "SELECT count(*) FROM raw_import_records")
assets=$(sqlite3 "$db" "SELECT count(*) FROM assets")
echo "flow: $records raw records, $assets assets ($db)"
p_times=(); i_times=()
for run in $(seq "$runs"); do
  fresh intake_bench_copy
  start=$(now)
  psql -q -v ON_ERROR_STOP=1 "$server/intake_bench_copy" -c "BEGIN" -f "$copy_script" -c "COMMIT" >/dev/null
  p=$(awk -v a="$start" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}')
  fresh intake_bench_sync
  start=$(now)
  DATABASE_URL="$server/intake_bench_sync" ./target/release/intake --db "$db" sync --quiet >/dev/null
  i=$(awk -v a="$start" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}')
  p_times+=("$p"); i_times+=("$i")
  echo "run $run: psql \\copy $p s, intake sync $i s"
done
psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS intake_bench_copy WITH (FORCE)" -c "DROP DATABASE IF EXISTS intake_bench_sync WITH (FORCE)" >/dev/null
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
p=$(median "${p_times[@]}"); i=$(median "${i_times[@]}")
ratio=$(awk -v i="$i" -v p="$p" 'BEGIN {printf "%.2f", i/p}')
echo "median: psql \\copy ${p} s, intake sync ${i} s, ratio ${ratio} (target <= 1.5)"
awk -v r="$ratio" 'BEGIN {exit !(r <= 1.5)}'
