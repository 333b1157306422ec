#!/usr/bin/env bash
# Benchmarks emberchat against its peers in one run (README "Benchmarks"): the Socket.IO
# tutorial's Node server (bench/node) and a socketioxide server (bench/socketioxide).
#
# Each server gets a free loopback port and a fresh database. One instance runs idle, conns,
# fanout and ingest in that order; replay runs on fresh instances over preloaded databases of
# 100k and 1M rows; burst (20,000 x 1 KB to fast, slow and stalled readers) on a fresh one.
# The load generator (examples/loadgen) checks every delivery and reads the server's /proc.
# Then the page scenario opens each server's chat page in Chromium on the same 100k and 1M
# databases (bench/page.mjs), and the cluster scenario runs three of emberchat and of Node on
# one Redis (CLUSTER_ONLY=1: that scenario alone). Output: JSON lines (results.jsonl) and a Markdown table with
# ratios.
#
#   SERVERS="emberchat node socketioxide" bash bench/run.sh   # all three (default)
#   OUT=bench/results bash bench/run.sh                       # where the results go
set -euo pipefail
cd "$(dirname "$0")/.."

# What `make bench` builds (static, for the host's target triple).
HOST=$(rustc -vV | sed -n 's/^host: //p')
BIN=${BIN:-target/$HOST/release/emberchat}
LOADGEN=${LOADGEN:-target/$HOST/release/examples/loadgen}
for program in "$BIN" "$LOADGEN"; do
  [ -x "$program" ] || { echo "$program is missing: run make bench" >&2; exit 1; }
done
SIOX_BIN=${SIOX_BIN:-bench/socketioxide/target/release/socketioxide-chat-peer}
SERVERS=${SERVERS:-emberchat node socketioxide}
REPLAY_ROWS=${REPLAY_ROWS:-100000 1000000}
# Fan-out and short replays last tens of milliseconds on a fast server: each is run this many
# times and the median round reported, so one scheduler hiccup does not decide a target.
FANOUT_ROUNDS=${FANOUT_ROUNDS:-5}
REPLAY_ROUNDS=${REPLAY_ROUNDS:-5}
OUT=${OUT:-bench/results}
WORK=$(mktemp -d /tmp/emberchat-bench.XXXXXX)
SERVER_PID=
# The cluster scenario: emberchat built with cluster mode (make bench builds it apart), and
# what it starts (three servers and a Redis).
CLUSTER_BIN=${CLUSTER_BIN:-target/cluster/$HOST/release/emberchat}
CLUSTER_ONLY=${CLUSTER_ONLY:-}
CLUSTER_PIDS=()
REDIS_PID=

cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  for pid in "${CLUSTER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# 1000 clients and the server's 1000 sockets need more than the usual 1024 descriptors.
ulimit -n 8192

mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"

# A database of N rows of ~40-byte messages, made once per size and copied for each server.
# Rollback journal mode, as a fresh file has: each server opens it its own way.
template() {
  local rows=$1 path=$WORK/template-$1.db
  if [ ! -e "$path" ]; then
    python3 - "$path" "$rows" <<'PY'
import sqlite3, sys
path, n = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path)
db.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, client_offset TEXT UNIQUE, content TEXT)")
db.executemany("INSERT INTO messages (content) VALUES (?)",
               (("backlog message number %09d" % i,) for i in range(1, n + 1)))
db.commit()
db.close()
PY
  fi
  echo "$path"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts server $1 on database $2; sets SERVER_PID and ADDR once it accepts connections.
start() {
  local name=$1 db=$2 port log=$WORK/$1.log
  port=$(free_port)
  ADDR=127.0.0.1:$port
  case $name in
    emberchat)
      # No per-client rate limit: the benchmark pipelines thousands of messages per client.
      "$BIN" --listen "$ADDR" --db "$db" --max-message-rate 0 --log-level warn >"$log" 2>&1 &
      ;;
    node) PORT=$port DB=$db node bench/node/index.js >"$log" 2>&1 & ;;
    socketioxide) PORT=$port DB=$db "$SIOX_BIN" >"$log" 2>&1 & ;;
    *) echo "unknown server $name" >&2; exit 1 ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      # Let start-up work (a JIT, a first checkpoint) settle before anything is measured.
      sleep 2
      return 0
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    sleep 0.05
  done
  echo "$name did not start:" >&2
  cat "$log" >&2
  exit 1
}

# SIGTERM, and SIGKILL if the server has not gone within 10 s.
stop() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

# Runs one loadgen scenario against the running server and records its JSON line.
measure() {
  local name=$1 scenario=$2
  shift 2
  local line
  if ! line=$("$LOADGEN" "$scenario" --pid "$SERVER_PID" --addr "$ADDR" "$@"); then
    echo "$name: $scenario failed" >&2
    exit 1
  fi
  echo "{\"server\":\"$name\",${line#\{}" | tee -a "$RESULTS"
}

rows_in() {
  python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*), count(DISTINCT content) FROM messages").fetchone())' "$1"
}

started=$(date +%s)
if [ -n "$CLUSTER_ONLY" ]; then SINGLE=; else SINGLE=$SERVERS; fi
for name in $SINGLE; do
  db=$WORK/$name.db
  start "$name" "$db"
  measure "$name" idle
  measure "$name" conns --clients 1000
  measure "$name" fanout --receivers 100 --messages 2000 --rounds "$FANOUT_ROUNDS"
  measure "$name" ingest --messages 20000
  stop
  # Everything acked is stored, once: the fanout warm-up and rounds (2000 each) and the ingest.
  expected=$((2000 * (FANOUT_ROUNDS + 1) + 20000))
  stored=$(rows_in "$db")
  if [ "$stored" != "($expected, $expected)" ]; then
    echo "$name: expected $expected distinct stored messages, found $stored" >&2
    exit 1
  fi
  for rows in $REPLAY_ROWS; do
    cp "$(template "$rows")" "$db.replay"
    start "$name" "$db.replay"
    # Short replays are repeated (median reported); a 1M-row one is long enough once.
    rounds=$REPLAY_ROUNDS
    if [ "$rows" -ge 1000000 ]; then rounds=1; fi
    measure "$name" replay --rows "$rows" --rounds "$rounds"
    stop
    rm -f "$db.replay" "$db.replay-wal" "$db.replay-shm" "$db.replay-journal"
  done
  # A burst faster than some readers read, on a fresh database: reported, not checked here
  # (a peer may drop or disconnect; the table says what each did).
  start "$name" "$db.burst"
  measure "$name" burst --messages 20000
  stop
  rm -f "$db.burst" "$db.burst-wal" "$db.burst-shm" "$db.burst-journal"
done

# The page scenario: each server's own chat page in headless Chromium (the tutorial's page
# for node; socketioxide has none) on the replay databases: time until the newest message
# is on screen, list items and JS heap once the page is quiet (bench/page.mjs), within
# PAGE_CAP seconds.
PAGE_CAP=${PAGE_CAP:-120}
for name in $SINGLE; do
  if [ "$name" = socketioxide ]; then continue; fi
  for rows in $REPLAY_ROWS; do
    db=$WORK/$name.page.db
    cp "$(template "$rows")" "$db"
    start "$name" "$db"
    newest=$(printf 'backlog message number %09d' "$rows")
    if ! line=$(node bench/page.mjs "http://$ADDR/" "$rows" "$newest" "$PAGE_CAP"); then
      echo "$name: page on $rows rows failed" >&2
      exit 1
    fi
    echo "{\"server\":\"$name\",${line#\{}" | tee -a "$RESULTS"
    stop
    rm -f "$db" "$db-wal" "$db-shm" "$db-journal"
  done
done

# The cluster scenario (README "Several boards, one chat"): three emberchat gateways on one
# Redis, then three Node socket.io 4.8 servers with socket.io's Redis Streams adapter on a
# fresh one (both keeping 1,000,000 entries). Redis keeps its log as a board would: AOF,
# appendfsync everysec. loadgen's cluster scenario drives all three servers at once.
wait_port() {
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}
for name in emberchat node; do
  case " $SERVERS " in *" $name "*) ;; *) continue ;; esac
  [ -x "$CLUSTER_BIN" ] || { echo "$CLUSTER_BIN is missing: run make bench" >&2; exit 1; }
  rport=$(free_port)
  mkdir -p "$WORK/redis-$name"
  redis-server --port "$rport" --bind 127.0.0.1 --dir "$WORK/redis-$name" --appendonly yes \
    --appendfsync everysec --save "" >"$WORK/redis-$name.log" 2>&1 &
  REDIS_PID=$!
  wait_port "$rport" || { echo "redis-server did not start" >&2; exit 1; }
  CLUSTER_PIDS=()
  addrs=
  for i in 1 2 3; do
    log=$WORK/cluster-$name-$i.log
    case $name in
      emberchat)
        port=$(free_port)
        "$CLUSTER_BIN" --listen "127.0.0.1:$port" --redis "redis://127.0.0.1:$rport/0" \
          --max-message-rate 0 --log-level warn >"$log" 2>&1 &
        ;;
      node)
        node tests/js/node_cluster_server.mjs "redis://127.0.0.1:$rport/0" socket.io 1000000 >"$log" 2>&1 &
        ;;
    esac
    CLUSTER_PIDS+=($!)
    if [ "$name" = node ]; then
      for _ in $(seq 200); do grep -q 'listening on' "$log" && break; sleep 0.05; done
      port=$(sed -n 's|^listening on http://127.0.0.1:||p' "$log")
    fi
    wait_port "$port" || { echo "$name cluster server $i did not start:" >&2; cat "$log" >&2; exit 1; }
    addrs=$addrs,127.0.0.1:$port
  done
  sleep 2
  pids=$(IFS=,; echo "${CLUSTER_PIDS[*]}")
  if ! line=$(timeout 600 "$LOADGEN" cluster --pids "$pids" --addrs "${addrs#,}" --redis-pid "$REDIS_PID" \
      --receivers 99 --messages 3000 --rounds "$FANOUT_ROUNDS" --ingest 15000); then
    echo "$name: cluster failed" >&2
    exit 1
  fi
  echo "{\"server\":\"$name\",${line#\{}" | tee -a "$RESULTS"
  for pid in "${CLUSTER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  CLUSTER_PIDS=()
  kill "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true
  REDIS_PID=
done

echo "{\"elapsed_seconds\":$(($(date +%s) - started))}" >"$OUT/run.json"

python3 bench/table.py "$RESULTS" | tee "$OUT/table.md"
