#!/usr/bin/env bash
# A generated million-row CMDB export through `intake import` against
# `sqlite3 DB ".import --csv FILE t"` of the same file, in the same run.
# PHASE is the last discovery phase intake runs:
#   data_import (staging only; target: median <= 1.5 x sqlite3's, peak RSS < 300 MB)
#   inventory   (the full import: staging, mapping, cleansing, inventory; target <= 2.5 x)
#   tech_debt   (every phase, as a plain `intake import` runs them; memory target only)
#
#   benches/compare_sqlite_import.sh [ROWS] [RUNS] [PHASE]   (defaults: 1000000 3 data_import)
#
# Needs sqlite3 and GNU time (apt-get install sqlite3 time). Exits 1 when a
# target is missed.
set -euo pipefail
rows=${1:-1000000}
runs=${2:-3}
phase=${3:-data_import}
case "$phase" in
  data_import) target=1.5 ;;
  inventory) target=2.5 ;;
  *) target=none ;;
esac
cd "$(dirname "$0")/.."
for tool in sqlite3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install sqlite3 time" >&2; exit 2; }
done
cargo build --release --quiet --bin intake --bin gen-cmdb
dir=bench-data
mkdir -p "$dir"
csv="$dir/cmdb_${rows}.csv"
[ -s "$csv" ] || ./target/release/gen-cmdb --rows "$rows" --out "$csv"
echo "file: $csv ($(du -h "$csv" | cut -f1), $rows rows, $(head -1 "$csv" | tr ',' '\n' | wc -l) columns)"

s_times=(); i_times=(); i_mem=0
for run in $(seq "$runs"); do
  # Each tool starts with no other run's writes still being flushed.
  rm -f "$dir/sqlite.db"; sync
  /usr/bin/time -f "%e %M" -o "$dir/time.txt" sqlite3 "$dir/sqlite.db" ".import --csv $csv t" >/dev/null 2>&1
  read -r t m < "$dir/time.txt"
  s_times+=("$t")
  rm -f "$dir"/intake.db*; sync
  /usr/bin/time -f "%e %M" -o "$dir/time.txt" ./target/release/intake --db "$dir/intake.db" import "$csv" --stop-after "$phase" --quiet >/dev/null 2>&1
  read -r t m < "$dir/time.txt"
  i_times+=("$t"); (( m > i_mem )) && i_mem=$m
  echo "run $run: sqlite3 ${s_times[-1]} s, intake $t s (peak ${m} KB)"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
s=$(median "${s_times[@]}"); i=$(median "${i_times[@]}")
ratio=$(awk -v i="$i" -v s="$s" 'BEGIN {printf "%.2f", i/s}')
mb=$(( i_mem / 1024 ))
echo "median: sqlite3 .import ${s} s, intake import --stop-after $phase ${i} s, ratio ${ratio} (target <= ${target}); intake peak RSS ${mb} MB (target < 300)"
rows_db=$(sqlite3 "$dir/intake.db" "select count(*) from raw_import_records")
echo "rows stored by intake: $rows_db"
awk -v r="$ratio" -v t="$target" 'BEGIN {exit !(t == "none" || r <= t)}' && (( mb < 300 ))
