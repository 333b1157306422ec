#!/usr/bin/env bash
# Benchmarks emberchat (see README "Benchmarks"). Prints JSON lines and a Markdown table.
# Scenarios so far: replay of a preloaded backlog (100k and 1M rows): messages/s and the peak
# RSS growth during the replay (VmHWM reset through /proc/PID/clear_refs before it starts).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release/emberchat}
LOADGEN=${LOADGEN:-target/release/examples/loadgen}
WORK=$(mktemp -d /tmp/emberchat-bench.XXXXXX)
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Fills a fresh database with N rows of ~40-byte messages.
preload() {
  python3 - "$1" "$2" <<'PY'
import sqlite3, sys
path, n = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path)
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, client_offset TEXT UNIQUE, content TEXT)")
db.executemany("INSERT INTO messages (content) VALUES (?)", (("backlog message number %09d" % i,) for i in range(1, n + 1)))
db.commit()
db.close()
PY
}

# Starts the gateway on a free port; sets SERVER_PID and ADDR.
start() {
  local db=$1 log=$WORK/server.log
  "$BIN" --listen 127.0.0.1:0 --db "$db" --log-level info 2>"$log" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    ADDR=$(sed -n 's/.*listening on http:\/\/\([^,]*\),.*/\1/p' "$log" | head -n1)
    [ -n "$ADDR" ] && return 0
    sleep 0.05
  done
  echo "gateway did not start" >&2; cat "$log" >&2; exit 1
}

# Stops it the way systemd would.
stop() {
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
}

kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$SERVER_PID/status"; }


RESULTS=$WORK/results.jsonl
for rows in 100000 1000000; do
  db=$WORK/replay-$rows.db
  preload "$db" "$rows"
  start "$db"
  sleep 1
  "$LOADGEN" replay --pid "$SERVER_PID" --addr "$ADDR" --rows "$rows" | tee -a "$RESULTS"
  stop
  rm -f "$db" "$db-wal" "$db-shm"
done

echo
echo "| scenario | rows | messages/s | peak RSS growth |"
echo "|---|---|---|---|"
python3 - "$RESULTS" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f"| replay | {r['rows']:,} | {r['messages_per_second']:,.0f} | {r['peak_growth_kib']} KiB |")
PY
