#!/usr/bin/env bash
# Staging (`intake import --stop-after data_import`) a generated 100,000-row, 40-column .xlsx against
# DuckDB's read_xlsx loading the same file into a table of an on-disk database,
# in the same run. Target: intake's median time < DuckDB's; intake's peak RSS
# < 300 MB.
#
#   benches/compare_duckdb_xlsx.sh [ROWS] [RUNS]      (defaults: 100000 5)
#
# Installs duckdb==1.4.4 and duckdb-ext-excel==1.4.4.20260205 from PyPI into
# bench-data/.venv (the Excel extension then loads offline from that package).
# Needs python3 with venv and GNU time. Exits 1 when a target is missed.
set -euo pipefail
rows=${1:-100000}
runs=${2:-5}
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "missing GNU time: apt-get install time" >&2; exit 2; }
dir=bench-data
mkdir -p "$dir"
venv="$dir/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet duckdb==1.4.4 duckdb-ext-excel==1.4.4.20260205
fi
cargo build --release --quiet --bin intake --bin gen-cmdb
xlsx="$dir/cmdb_${rows}_40col.xlsx"
[ -s "$xlsx" ] || ./target/release/gen-cmdb --rows "$rows" --format xlsx --columns 40 --out "$xlsx"
echo "file: $xlsx ($(du -h "$xlsx" | cut -f1), $rows rows, 40 columns)"

cat > "$dir/duckdb_read_xlsx.py" <<'PY'
import os, sys, duckdb, duckdb_ext
ext = os.path.join(list(duckdb_ext.__path__)[0], "extensions")
con = duckdb.connect(sys.argv[2])
con.execute(f"SET extension_directory = '{ext}'")
con.execute("LOAD excel")
# stop_at_empty=false: the export has empty rows, and every row must load.
con.execute("CREATE TABLE t AS SELECT * FROM read_xlsx(?, all_varchar = true, stop_at_empty = false)", [sys.argv[1]])
print(con.execute("SELECT count(*) FROM t").fetchone()[0])
con.close()
PY

d_times=(); i_times=(); i_mem=0; d_mem=0
for run in $(seq "$runs"); do
  rm -f "$dir/duck.db" "$dir/duck.db.wal"
  /usr/bin/time -f "%e %M" -o "$dir/time.txt" "$venv/bin/python" "$dir/duckdb_read_xlsx.py" "$xlsx" "$dir/duck.db" > "$dir/duck_rows.txt"
  read -r t m < "$dir/time.txt"
  d_times+=("$t"); (( m > d_mem )) && d_mem=$m
  rm -f "$dir"/intake.db*
  /usr/bin/time -f "%e %M" -o "$dir/time.txt" ./target/release/intake --db "$dir/intake.db" import "$xlsx" --stop-after data_import --quiet >/dev/null 2>&1
  read -r t m < "$dir/time.txt"
  i_times+=("$t"); (( m > i_mem )) && i_mem=$m
  echo "run $run: duckdb read_xlsx ${d_times[-1]} s, intake $t s (peak ${m} KB)"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
d=$(median "${d_times[@]}"); i=$(median "${i_times[@]}")
ratio=$(awk -v i="$i" -v d="$d" 'BEGIN {printf "%.2f", i/d}')
mb=$(( i_mem / 1024 ))
echo "median: duckdb read_xlsx ${d} s (peak $(( d_mem / 1024 )) MB), intake import ${i} s, ratio ${ratio} (target < 1.00); intake peak RSS ${mb} MB (target < 300)"
echo "rows: duckdb $(cat "$dir/duck_rows.txt"), intake $(python3 -c "import sqlite3; print(sqlite3.connect('$dir/intake.db').execute('select count(*) from raw_import_records').fetchone()[0])")"
awk -v r="$ratio" 'BEGIN {exit !(r < 1.0)}' && (( mb < 300 ))
