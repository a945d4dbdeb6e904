#!/usr/bin/env bash
# Start, stop or inspect a Spark standalone cluster (one master, N workers) on 127.0.0.1, from the pyspark package.
#
#   scripts/spark-cluster.sh start [--workers N]   # then: spark-submit --master spark://127.0.0.1:7077 …
#   scripts/spark-cluster.sh status
#   scripts/spark-cluster.sh stop
#
# It starts the master and workers with the installed pyspark's own bin/spark-class, records every
# process id it started under $SPARK_CLUSTER_DIR, and `stop` signals exactly those ids (nothing by name).
# Logs and the workers' work dirs (executor stdout/stderr) live there too; `start` clears the last ones.
#
# Environment (defaults in brackets):
#   SPARK_CLUSTER_DIR        state, pids and logs          [.cache/spark-cluster]
#   SPARK_MASTER_HOST        address everything binds to   [127.0.0.1]
#   SPARK_MASTER_PORT        master RPC port               [7077]
#   SPARK_MASTER_WEBUI_PORT  master web UI (/json/)        [8080]
#   SPARK_WORKER_WEBUI_PORT  first worker's web UI; worker i uses this + i - 1; 0: any free port   [8081]
#   SPARK_WORKERS            workers, unless --workers     [2]
#   SPARK_WORKER_CORES       cores per worker              [1]
#   SPARK_WORKER_MEMORY      memory per worker (an executor takes 1g unless told less)   [1g]
#   SPARK_CLUSTER_TIMEOUT    seconds `start` waits for the master, then for the workers   [180]
#   PYTHON                   python of the executors (must import data_prep, playlist)   [.venv/bin/python]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
STATE=${SPARK_CLUSTER_DIR:-$ROOT/.cache/spark-cluster}
HOST=${SPARK_MASTER_HOST:-127.0.0.1}
PORT=${SPARK_MASTER_PORT:-7077}
UI_PORT=${SPARK_MASTER_WEBUI_PORT:-8080}
WORKER_UI_PORT=${SPARK_WORKER_WEBUI_PORT:-8081}
WORKERS=${SPARK_WORKERS:-2}
CORES=${SPARK_WORKER_CORES:-1}
MEMORY=${SPARK_WORKER_MEMORY:-1g}
TIMEOUT=${SPARK_CLUSTER_TIMEOUT:-180}
MARKER="-Dencore.spark-cluster.dir=$STATE"  # on the daemons' java command line, so `alive` knows them

die() { echo "spark-cluster: $*" >&2; exit 1; }

usage() {
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

alive() {  # alive PID: the process is a daemon this script started for $STATE (not a reused pid)
  local cmd
  # -ww: the whole command line (the marker follows a long classpath), whatever COLUMNS says
  # (ps cuts it to $COLUMNS when that is exported, as pytest-xdist workers do).
  cmd=$(ps -ww -p "$1" -o args= 2>/dev/null) || return 1
  # The JVM carries the marker; in its first moments the pid is still bin/spark-class (it execs java).
  [[ $cmd == *" $MARKER "* || ($cmd == *bin/spark-class\ org.apache.spark.deploy.* && $cmd != *java\ *) ]]
}

master_json() {  # the master's /json/ summary as "status aliveworkers activeapps", or nothing
  "$PYTHON" - "$1" <<'PY' 2>/dev/null || true
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1] + "/json/", timeout=2) as r:
        d = json.load(r)
except Exception:
    sys.exit(0)
alive = sum(1 for w in d.get("workers", []) if w.get("state") == "ALIVE")
print(d.get("status", "?"), alive, len(d.get("activeapps", [])))
PY
}

log_tails() {
  local f
  for f in "$STATE"/*.log; do
    [ -e "$f" ] || continue
    echo "---- last lines of $f" >&2
    tail -n 25 "$f" >&2
  done
}

pid_files() {  # sets PID_FILES: workers first, master last (the order `stop` signals them in)
  local f
  PID_FILES=()
  for f in "$STATE"/worker-*.pid "$STATE"/master.pid; do
    [ -e "$f" ] && PID_FILES+=("$f")
  done
  return 0
}

stop() {
  local f pid waited
  local -a live=()
  pid_files
  for f in "${PID_FILES[@]}"; do
    pid=$(<"$f")
    if alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      live+=("$pid")
      echo "stopping $(basename "$f" .pid) (pid $pid)"
    fi
    rm -f "$f"
  done
  for pid in "${live[@]}"; do
    waited=0
    while alive "$pid" && [ "$waited" -lt 20 ]; do
      sleep 0.5
      waited=$((waited + 1))
    done
    if alive "$pid"; then
      echo "pid $pid ignored SIGTERM for 10 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$STATE/cluster.env"
}

status() {
  local f pid url ui running=1
  if [ -e "$STATE/cluster.env" ]; then
    # shellcheck disable=SC1091
    source "$STATE/cluster.env"
    url=$MASTER_URL
    ui=$MASTER_WEBUI
  else
    url="spark://$HOST:$PORT"
    ui="http://$HOST:$UI_PORT"
  fi
  pid_files
  if [ "${#PID_FILES[@]}" = 0 ]; then
    echo "no cluster recorded in $STATE"
    return 3
  fi
  for f in "${PID_FILES[@]}"; do
    pid=$(<"$f")
    if alive "$pid"; then
      echo "$(basename "$f" .pid): pid $pid running"
    else
      echo "$(basename "$f" .pid): pid $pid NOT running"
      running=0
    fi
  done
  read -r state workers apps <<<"$(master_json "$ui")"
  if [ -n "${state:-}" ]; then
    echo "master $url ($ui): $state, $workers alive worker(s), $apps running application(s)"
  else
    echo "master $url: web UI $ui does not answer"
    running=0
  fi
  [ "$running" = 1 ] || return 3
}

wait_for() {  # wait_for WORKERS: until the master is ALIVE with that many alive workers, or fail
  local want=$1 deadline=$((SECONDS + TIMEOUT)) f state workers apps
  while [ "$SECONDS" -lt "$deadline" ]; do
    pid_files
    for f in "${PID_FILES[@]}"; do
      if ! alive "$(<"$f")"; then
        echo "spark-cluster: $(basename "$f" .pid) (pid $(<"$f")) exited during start" >&2
        log_tails
        stop >/dev/null
        exit 1
      fi
    done
    read -r state workers apps <<<"$(master_json "http://$HOST:$UI_PORT")"
    if [ "${state:-}" = ALIVE ] && [ "${workers:-0}" -ge "$want" ]; then
      return 0
    fi
    sleep 0.5
  done
  echo "spark-cluster: master at http://$HOST:$UI_PORT/json/ did not report $want alive worker(s) within ${TIMEOUT}s" \
    "(last: status=${state:-none}, alive workers=${workers:-none})" >&2
  log_tails
  stop >/dev/null
  exit 1
}

start() {
  local spark_home f i
  [ -x "$PYTHON" ] || die "$PYTHON not found; run 'make setup' or set PYTHON"
  command -v java >/dev/null 2>&1 || [ -n "${JAVA_HOME:-}" ] || die "java not found; Spark needs Java 17 or 21"
  pid_files
  for f in "${PID_FILES[@]}"; do
    if alive "$(<"$f")"; then
      die "a cluster is already running from $STATE (pid $(<"$f")); run '$0 stop' first"
    fi
  done
  spark_home=$("$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))') \
    || die "$PYTHON cannot import pyspark"
  "$PYTHON" -c 'import data_prep, playlist' || die "$PYTHON cannot import data_prep and playlist; run 'make setup'"
  # The marker travels in SPARK_*_OPTS, which Spark splits on whitespace.
  [[ $STATE != *[[:space:]]* ]] || die "SPARK_CLUSTER_DIR must not contain whitespace: '$STATE'"
  mkdir -p "$STATE"
  rm -f "$STATE"/*.pid "$STATE"/*.log
  rm -rf "$STATE"/worker-*/

  export SPARK_HOME=$spark_home
  # Python workers run the venv's python, so executors import data_prep and playlist (installed editable).
  export PYSPARK_PYTHON=$PYTHON
  # The web UIs bind to SPARK_LOCAL_IP (else 0.0.0.0); a taken port is an error, not a silent port + 1.
  export SPARK_LOCAL_IP=$HOST
  export SPARK_MASTER_OPTS="${SPARK_MASTER_OPTS:-} $MARKER -Dspark.port.maxRetries=0 -Dspark.master.rest.enabled=false"
  export SPARK_WORKER_OPTS="${SPARK_WORKER_OPTS:-} $MARKER -Dspark.port.maxRetries=0"

  # spark-class execs java, so $! is the JVM's pid.
  nohup "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
    --host "$HOST" --port "$PORT" --webui-port "$UI_PORT" \
    >"$STATE/master.log" 2>&1 </dev/null &
  echo $! >"$STATE/master.pid"
  wait_for 0
  for ((i = 1; i <= WORKERS; i++)); do
    mkdir -p "$STATE/worker-$i"
    nohup "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
      --host "$HOST" --cores "$CORES" --memory "$MEMORY" --webui-port $((WORKER_UI_PORT > 0 ? WORKER_UI_PORT + i - 1 : 0)) \
      --work-dir "$STATE/worker-$i" "spark://$HOST:$PORT" \
      >"$STATE/worker-$i.log" 2>&1 </dev/null &
    echo $! >"$STATE/worker-$i.pid"
  done
  wait_for "$WORKERS"
  cat >"$STATE/cluster.env" <<ENV
MASTER_URL=spark://$HOST:$PORT
MASTER_WEBUI=http://$HOST:$UI_PORT
ENV
  echo "spark://$HOST:$PORT is up with $WORKERS worker(s) of $CORES core(s) and $MEMORY" \
    "(web UI http://$HOST:$UI_PORT, logs and pids in $STATE)"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
while [ $# -gt 0 ]; do
  case $1 in
    --workers) [ $# -ge 2 ] || usage; WORKERS=$2; shift 2 ;;
    --workers=*) WORKERS=${1#*=}; shift ;;
    *) usage ;;
  esac
done
[[ $WORKERS =~ ^[1-9][0-9]*$ ]] || die "--workers must be a positive integer, not '$WORKERS'"

case $cmd in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac
