#!/usr/bin/env bash
# A generated CMDB export in which every server names its application, through
# `intake import` against `sqlite3 DB ".import --csv FILE t"` of the same file(s)
# in the same run.
#
#   benches/compare_sqlite_import.sh [ROWS] [RUNS] [PHASE] [VARIANT]
#     (defaults: 1000000 3 all servers)
#
# PHASE is the last discovery phase intake runs:
#   all         every phase, the plain `intake import` a user runs (target <= 3 x sqlite3's)
#   data_import staging only (target <= 1.5 x)
#   inventory   staging, mapping, cleansing, inventory (target <= 2.5 x)
# VARIANT is what is imported:
#   servers        the CMDB server export alone (43 columns, u_application on every row)
#   relationships  the export and its cmdb_rel_ci relationship export (parent, type,
#                  child: about 1.1 relationships per server), imported together;
#                  sqlite3 imports both files too
# Every variant's target for intake's peak RSS is < 300 MB.
#
# Needs sqlite3 and GNU time (apt-get install sqlite3 time). Exits 1 when a
# target is missed.
set -euo pipefail
rows=${1:-1000000}
runs=${2:-3}
phase=${3:-all}
variant=${4:-servers}
case "$phase" in
  all) target=3.0; stop=() ;;
  data_import) target=1.5; stop=(--stop-after data_import) ;;
  inventory) target=2.5; stop=(--stop-after inventory) ;;
  *) echo "PHASE is all, data_import or inventory" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
for tool in sqlite3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install sqlite3 time" >&2; exit 2; }
done
cargo build --release --quiet --bin intake --bin gen-cmdb
dir=bench-data
mkdir -p "$dir"
csv="$dir/cmdb_${rows}.csv"
rel="$dir/cmdb_rel_ci_${rows}.csv"
[ -s "$csv" ] || ./target/release/gen-cmdb --rows "$rows" --out "$csv"
files=("$csv")
sqlite_imports=(".import --csv $csv t")
case "$variant" in
  servers) ;;
  relationships)
    [ -s "$rel" ] || ./target/release/gen-cmdb --rows "$rows" --out /dev/null --relationships "$rel"
    files+=("$rel")
    sqlite_imports+=(".import --csv $rel r")
    ;;
  *) echo "VARIANT is servers or relationships" >&2; exit 2 ;;
esac
for f in "${files[@]}"; do
  echo "file: $f ($(du -h "$f" | cut -f1), $(head -1 "$f" | tr ',' '\n' | wc -l) columns)"
done

s_times=(); i_times=(); i_mem=0
for run in $(seq "$runs"); do
  # Each tool starts with no other run's writes still being flushed.
  rm -f "$dir/sqlite.db"; sync
  /usr/bin/time -f "%e %M" -o "$dir/time.txt" sqlite3 "$dir/sqlite.db" "${sqlite_imports[@]}" >/dev/null 2>&1
  read -r t m < "$dir/time.txt"
  s_times+=("$t")
  rm -f "$dir"/intake.db*; sync
  /usr/bin/time -f "%e %M" -o "$dir/time.txt" ./target/release/intake --db "$dir/intake.db" \
    import "${files[@]}" "${stop[@]}" --quiet >/dev/null 2>"$dir/intake.log" || {
    echo "intake import failed:" >&2; tail -5 "$dir/intake.log" >&2; exit 1; }
  read -r t m < "$dir/time.txt"
  i_times+=("$t"); (( m > i_mem )) && i_mem=$m
  echo "run $run: sqlite3 ${s_times[-1]} s, intake $t s (peak ${m} KB)"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
s=$(median "${s_times[@]}"); i=$(median "${i_times[@]}")
ratio=$(awk -v i="$i" -v s="$s" 'BEGIN {printf "%.2f", i/s}')
mb=$(( i_mem / 1024 ))
echo "median: sqlite3 .import ${s} s, intake import (${phase}, ${variant}) ${i} s, ratio ${ratio} (target <= ${target}); intake peak RSS ${mb} MB (target < 300)"
echo "stored by intake: $(sqlite3 "$dir/intake.db" "select (select count(*) from raw_import_records) || ' raw rows, ' || (select count(*) from assets) || ' assets, ' || (select count(*) from asset_dependencies) || ' edges'")"
awk -v r="$ratio" -v t="$target" 'BEGIN {exit !(r <= t)}' && (( mb < 300 ))
