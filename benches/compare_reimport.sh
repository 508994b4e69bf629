#!/usr/bin/env bash
# Re-importing: the plain `intake import` (every phase) of a generated CMDB export,
# then on a copy of that database each of
#   forced   the same file again with --force (target: no longer than the first import)
#   changed  the next export of the same CMDB, 1 % of its machines changed
#            (gen-cmdb --changed-percent 1; target: at least 3 x faster than the first)
#
#   benches/compare_reimport.sh [ROWS] [RUNS]   (defaults: 1000000 1)
#
# Needs GNU time (apt-get install time). Exits 1 when a target is missed.
set -euo pipefail
rows=${1:-1000000}
runs=${2:-1}
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "missing /usr/bin/time: apt-get install time" >&2; exit 2; }
cargo build --release --quiet --bin intake --bin gen-cmdb
dir=bench-data
mkdir -p "$dir"
csv="$dir/cmdb_${rows}.csv"
changed="$dir/cmdb_${rows}_changed1.csv"
[ -s "$csv" ] || ./target/release/gen-cmdb --rows "$rows" --out "$csv"
[ -s "$changed" ] || ./target/release/gen-cmdb --rows "$rows" --changed-percent 1 --out "$changed"
echo "files: $csv and $changed (the same machines, 1 % of them changed)"

timed() { # label, then the intake arguments; prints seconds and peak KB
  local label=$1; shift
  sync
  /usr/bin/time -f "%e %M" -o "$dir/time.txt" ./target/release/intake --db "$dir/intake.db" "$@" \
    --quiet >/dev/null 2>"$dir/intake.log" || {
    echo "$label failed:" >&2; tail -5 "$dir/intake.log" >&2; exit 1; }
  read -r t m < "$dir/time.txt"
  echo "$t $m"
}
first=(); forced=(); next=()
for run in $(seq "$runs"); do
  rm -f "$dir"/intake.db* "$dir"/first.db*
  read -r t m < <(timed first import "$csv"); first+=("$t")
  first_size=$(stat -c %s "$dir/intake.db")
  echo "run $run: first import $t s (peak $m KB), database $((first_size / 1000000)) MB"
  cp "$dir/intake.db" "$dir/first.db"
  read -r t m < <(timed forced import "$csv" --force); forced+=("$t")
  echo "run $run: forced re-import $t s (peak $m KB)"
  rm -f "$dir"/intake.db*; cp "$dir/first.db" "$dir/intake.db"
  read -r t m < <(timed changed import "$changed"); next+=("$t")
  size=$(stat -c %s "$dir/intake.db")
  echo "run $run: 1 % changed re-import $t s (peak $m KB), database $((size / 1000000)) MB (+$(( (size - first_size) * 100 / first_size )) %, target <= 10 %)"
  echo "  assets: $(sqlite3 "$dir/intake.db" "select count(*) from assets")"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
f=$(median "${first[@]}"); r=$(median "${forced[@]}"); c=$(median "${next[@]}")
echo "median: first $f s, forced $r s ($(awk -v a="$r" -v b="$f" 'BEGIN {printf "%.2f", a/b}') x first, target <= 1), 1 % changed $c s ($(awk -v a="$f" -v b="$c" 'BEGIN {printf "%.1f", a/b}') x faster, target >= 3)"
rm -f "$dir"/first.db*
awk -v f="$f" -v r="$r" -v c="$c" 'BEGIN {exit !(r <= f && c * 3 <= f)}'
