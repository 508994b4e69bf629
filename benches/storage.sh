#!/usr/bin/env bash
# What the local file holds after the plain `intake import` (every phase) of a
# generated CMDB export: the database against the input files, and each table
# and index (SQLite's dbstat), with the bytes per stored row.
#
#   benches/storage.sh [ROWS] [VARIANT]     (defaults: 200000 relationships)
#
# VARIANT is servers (the export alone), relationships (with its cmdb_rel_ci
# export beside it) or workbook (the export as .xlsx, measured against its
# uncompressed sheet XML). Target: the database at most 3 x the input (issue 40).
# Needs sqlite3 and unzip (apt-get install sqlite3 unzip). Exits 1 when the
# target is missed.
set -euo pipefail
rows=${1:-200000}
variant=${2:-relationships}
cd "$(dirname "$0")/.."
command -v sqlite3 >/dev/null || { echo "missing sqlite3: apt-get install sqlite3" >&2; exit 2; }
cargo build --release --quiet --bin intake --bin gen-cmdb
dir=bench-data
mkdir -p "$dir"
csv="$dir/cmdb_${rows}.csv"
rel="$dir/cmdb_rel_ci_${rows}.csv"
xlsx="$dir/cmdb_${rows}.xlsx"
case "$variant" in
  servers|relationships)
    [ -s "$csv" ] || ./target/release/gen-cmdb --rows "$rows" --out "$csv"
    files=("$csv") ;;
  workbook)
    [ -s "$xlsx" ] || ./target/release/gen-cmdb --rows "$rows" --format xlsx --out "$xlsx"
    files=("$xlsx") ;;
  *) echo "VARIANT is servers, relationships or workbook" >&2; exit 2 ;;
esac
if [ "$variant" = relationships ]; then
  [ -s "$rel" ] || ./target/release/gen-cmdb --rows "$rows" --out /dev/null --relationships "$rel"
  files+=("$rel")
fi
db="$dir/storage.db"
rm -f "$db"*
start=$(date +%s.%N)
./target/release/intake --db "$db" import "${files[@]}" --quiet >/dev/null 2>"$dir/intake.log" || {
  echo "intake import failed:" >&2; tail -5 "$dir/intake.log" >&2; exit 1; }
took=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
if [ "$variant" = workbook ]; then
  input=$(unzip -l "$xlsx" 'xl/worksheets/*.xml' 'xl/sharedStrings.xml' | tail -1 | awk '{print $1}')
else
  input=$(cat "${files[@]}" | wc -c)
fi
size=$(stat -c %s "$db")
echo "input: ${files[*]} ($((input / 1000000)) MB); intake import took ${took} s"
echo "database: $((size / 1000000)) MB, $(awk -v a="$size" -v b="$input" 'BEGIN {printf "%.2f", a/b}') x the input (target <= 3)"
echo "page size $(sqlite3 "$db" 'pragma page_size'), free pages $(sqlite3 "$db" 'pragma freelist_count')"
sqlite3 -column -header "$db" "
  WITH t AS (SELECT name, tbl_name, type FROM sqlite_schema WHERE type IN ('table', 'index')),
  s AS (SELECT name, sum(pgsize) AS bytes, sum(payload) AS payload, sum(ncell) AS cells
        FROM dbstat GROUP BY name)
  SELECT t.tbl_name AS tbl, s.name AS object, round(s.bytes / 1e6, 1) AS mb,
         round(100.0 * s.payload / s.bytes) AS fill_pct
  FROM s JOIN t ON t.name = s.name
  WHERE s.bytes > 1e6 ORDER BY s.bytes DESC;"
echo "rows: $(sqlite3 "$db" "select (select count(*) from raw_import_records) || ' raw rows, ' || (select count(*) from assets) || ' assets, ' || (select count(*) from asset_dependencies) || ' edges'")"
awk -v a="$size" -v b="$input" 'BEGIN {exit !(a <= 3 * b)}'
