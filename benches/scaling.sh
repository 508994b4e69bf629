#!/usr/bin/env bash
# How the plain `intake import` (every phase) grows with the data: for each row
# count, a generated CMDB export in which every server names its application,
# with its cmdb_rel_ci relationship export beside it, imported into a new
# database; then `sqlite3 .import` of the same two files. Prints a Markdown
# table of the input's and the database's sizes, each phase's time and peak RSS
# (from `--json` `phase_costs`), the whole run's time and peak RSS (GNU time)
# and the ratio to sqlite3.
#
#   benches/scaling.sh [ROWS ...]      (default: 10000 100000 1000000 5000000)
#
# The 5,000,000-row files take about 3.5 GB of disk, the databases about 25 GB
# at their largest. Needs sqlite3, python3 and GNU time.
set -euo pipefail
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 100000 1000000 5000000)
cd "$(dirname "$0")/.."
for tool in sqlite3 python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install sqlite3 python3 time" >&2; exit 2; }
done
cargo build --release --quiet --bin intake --bin gen-cmdb
dir=bench-data
mkdir -p "$dir"
echo "| rows | input | database | data_import | attribute_mapping | data_cleansing | inventory | dependencies | tech_debt | whole run | sqlite3 .import | ratio |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for rows in "${sizes[@]}"; do
  csv="$dir/cmdb_${rows}.csv"
  rel="$dir/cmdb_rel_ci_${rows}.csv"
  [ -s "$csv" ] || ./target/release/gen-cmdb --rows "$rows" --out "$csv"
  [ -s "$rel" ] || ./target/release/gen-cmdb --rows "$rows" --out /dev/null --relationships "$rel"
  rm -f "$dir/sqlite.db"; sync
  /usr/bin/time -f "%e %M" -o "$dir/time.txt" sqlite3 "$dir/sqlite.db" ".import --csv $csv t" ".import --csv $rel r" >/dev/null 2>&1
  read -r sqlite_s _ < "$dir/time.txt"
  rm -f "$dir/sqlite.db" "$dir"/scaling.db*; sync
  /usr/bin/time -f "%e %M" -o "$dir/time.txt" ./target/release/intake --db "$dir/scaling.db" \
    import "$csv" "$rel" --json --quiet >"$dir/scaling.json" 2>"$dir/scaling.log" || {
    echo "intake import of $rows rows failed:" >&2; tail -5 "$dir/scaling.log" >&2; exit 1; }
  read -r whole_s whole_kb < "$dir/time.txt"
  input_bytes=$(( $(stat -c %s "$csv") + $(stat -c %s "$rel") ))
  db_bytes=$(stat -c %s "$dir/scaling.db")
  python3 - "$dir/scaling.json" "$rows" "$whole_s" "$whole_kb" "$sqlite_s" "$input_bytes" "$db_bytes" <<'PY'
import json, sys
outcome = json.load(open(sys.argv[1]))
rows, whole_s, whole_kb, sqlite_s = sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
input_mb, db_mb = int(sys.argv[6]) / 1e6, int(sys.argv[7]) / 1e6
costs = {c["phase"]: c for c in outcome["phase_costs"]}
phases = ["data_import", "attribute_mapping", "data_cleansing", "inventory", "dependencies", "tech_debt"]
def cell(c):
    if c is None:
        return "–"
    mb = "" if c["peak_rss_bytes"] is None else f", {c['peak_rss_bytes'] >> 20} MB"
    return f"{c['seconds']:.2f} s{mb}"
cells = [cell(costs.get(p)) for p in phases]
print(f"| {int(rows):,} | {input_mb:,.0f} MB | {db_mb:,.0f} MB ({db_mb / input_mb:.1f} ×) | " + " | ".join(cells) +
      f" | {whole_s:.2f} s, {whole_kb >> 10} MB | {sqlite_s:.2f} s | {whole_s / sqlite_s:.2f} × |")
PY
done
rm -f "$dir"/scaling.db*
