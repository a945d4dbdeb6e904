#!/usr/bin/env bash
# A shared MLflow tracking server on PostgreSQL for a team: start | stop | status (docs/team-setup.md).
#
#   scripts/team-server.sh start    # PostgreSQL + `mlflow server`, prints the MLFLOW_TRACKING_URI to use
#   scripts/team-server.sh status   # exit 0 when both answer, 3 otherwise
#   scripts/team-server.sh stop     # stops exactly the processes `start` recorded
#
# Everything lives under $ENCORE_SERVER_DIR (default <repo>/.cache/team-server):
#   pgdata/       the PostgreSQL cluster (its postmaster.pid names the server process)
#   artifacts/    run artifacts and registered models, uploaded through the server (--serve-artifacts)
#   pgpass        the database password (mode 600, read by libpq through PGPASSFILE, never on a command line)
#   mlflow.pid    "<pid> <start time>" of `mlflow server`, the leader of its own process group
#   postgres.log, mlflow.log
# Environment: ENCORE_PG_PORT (55432), ENCORE_MLFLOW_PORT (5055), ENCORE_MLFLOW_WORKERS (2),
# ENCORE_PG_BIN (a PostgreSQL bin directory; default: the newest /usr/lib/postgresql/*/bin),
# ENCORE_PG_USER (the account PostgreSQL runs as when this script runs as root; default postgres),
# ENCORE_MLFLOW (the mlflow executable), ENCORE_SERVER_TIMEOUT (seconds `start` waits; 120).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${ENCORE_SERVER_DIR:-$ROOT/.cache/team-server}
PG_PORT=${ENCORE_PG_PORT:-55432}
MLFLOW_PORT=${ENCORE_MLFLOW_PORT:-5055}
WORKERS=${ENCORE_MLFLOW_WORKERS:-2}
TIMEOUT=${ENCORE_SERVER_TIMEOUT:-120}
PG_USER=${ENCORE_PG_USER:-postgres}
DB=mlflow
DB_USER=mlflow
TRACKING_URI=http://127.0.0.1:$MLFLOW_PORT
# SQLAlchemy 2.1 maps a plain postgresql:// to psycopg 3; encore installs psycopg2-binary, so name it.
BACKEND_URI=postgresql+psycopg2://$DB_USER@127.0.0.1:$PG_PORT/$DB

set_paths() { # once $DIR is absolute
  PGDATA_DIR=$DIR/pgdata
  ARTIFACTS=$DIR/artifacts
  PGPASS=$DIR/pgpass
  MLFLOW_PIDFILE=$DIR/mlflow.pid
}

die() {
  echo "team-server: $*" >&2
  exit 1
}

log_tail() { # file: the last lines of a log, indented, for an error message
  [ -f "$1" ] && { echo "--- last lines of $1:" >&2; tail -n 30 "$1" | sed 's/^/    /' >&2; }
  return 0
}

pg_bin() {
  local bin=${ENCORE_PG_BIN:-}
  if [ -z "$bin" ]; then
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  fi
  if [ -z "$bin" ] && command -v pg_config >/dev/null 2>&1; then
    bin=$(pg_config --bindir)
  fi
  [ -n "$bin" ] && [ -x "$bin/pg_ctl" ] ||
    die "PostgreSQL binaries not found (set ENCORE_PG_BIN; Debian/Ubuntu: apt-get install postgresql)"
  echo "$bin"
}

mlflow_bin() {
  local exe=${ENCORE_MLFLOW:-$ROOT/.venv/bin/mlflow}
  [ -x "$exe" ] || exe=$(command -v mlflow || true)
  [ -n "$exe" ] || die "mlflow not found (run make setup, or set ENCORE_MLFLOW)"
  echo "$exe"
}

as_pg() { # run a PostgreSQL server command; PostgreSQL refuses to run as root, so root runs it as $PG_USER
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$PG_USER" -- "$@"
  else
    "$@"
  fi
}

pg_running() { [ -f "$PGDATA_DIR/PG_VERSION" ] && as_pg "$BIN/pg_ctl" status -D "$PGDATA_DIR" >/dev/null 2>&1; }

proc_start_time() { # pid: the kernel's start time of a live (not zombie) process, to tell ours from a reused pid
  sed -E 's/^.*\) //' "/proc/$1/stat" 2>/dev/null | awk '$1 != "Z" {print $20}' || true
}

mlflow_pid() { # the recorded mlflow pid, if that very process is still alive
  [ -f "$MLFLOW_PIDFILE" ] || return 1
  local pid started
  read -r pid started <"$MLFLOW_PIDFILE"
  [ -n "$pid" ] && [ "$(proc_start_time "$pid")" = "$started" ] || return 1
  echo "$pid"
}

healthy() { curl -fsS --max-time 5 "$TRACKING_URI/health" >/dev/null 2>&1; }

init_cluster() {
  [ -f "$PGDATA_DIR/PG_VERSION" ] && return 0
  echo "team-server: creating the PostgreSQL cluster in $PGDATA_DIR"
  mkdir -p "$PGDATA_DIR"
  chmod 700 "$PGDATA_DIR"
  if [ ! -f "$PGPASS" ]; then
    (umask 077 && printf '127.0.0.1:*:*:%s:%s\n' "$DB_USER" "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" >"$PGPASS")
  fi
  local pwfile
  pwfile=$(mktemp "$DIR/.pw.XXXXXX")
  cut -d: -f5 "$PGPASS" >"$pwfile"
  if [ "$(id -u)" = 0 ]; then
    id "$PG_USER" >/dev/null 2>&1 || die "running as root, PostgreSQL needs an unprivileged account: set ENCORE_PG_USER"
    chown "$PG_USER" "$PGDATA_DIR" "$pwfile"
    runuser -u "$PG_USER" -- test -w "$PGDATA_DIR" ||
      die "PostgreSQL runs as '$PG_USER' (it refuses root), which cannot reach $PGDATA_DIR; choose an ENCORE_SERVER_DIR whose parent directories it may enter"
  fi
  # scram passwords for TCP from 127.0.0.1 only; no Unix socket (see start_postgres).
  if ! as_pg "$BIN/initdb" -D "$PGDATA_DIR" -U "$DB_USER" --pwfile="$pwfile" --auth-host=scram-sha-256 \
    --auth-local=scram-sha-256 -E UTF8 --no-locale >"$DIR/initdb.log" 2>&1; then
    rm -f "$pwfile"
    log_tail "$DIR/initdb.log"
    die "initdb failed (log: $DIR/initdb.log)"
  fi
  rm -f "$pwfile"
  {
    echo "# encore team server (scripts/team-server.sh)"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = ''"
  } >>"$PGDATA_DIR/postgresql.conf"
  # Replace initdb's rules: connections from 127.0.0.1 with a password, nothing else.
  printf 'host all %s 127.0.0.1/32 scram-sha-256\n' "$DB_USER" >"$PGDATA_DIR/pg_hba.conf"
}

PG_STARTED_HERE=0

start_postgres() {
  if pg_running; then
    echo "team-server: PostgreSQL already running ($PGDATA_DIR)"
  else
    PG_STARTED_HERE=1
    : >"$DIR/postgres.log"
    [ "$(id -u)" = 0 ] && chown "$PG_USER" "$DIR/postgres.log"
    if ! as_pg "$BIN/pg_ctl" start -D "$PGDATA_DIR" -l "$DIR/postgres.log" -w -t 60 -o "-p $PG_PORT" >/dev/null; then
      log_tail "$DIR/postgres.log"
      die "PostgreSQL did not start on 127.0.0.1:$PG_PORT (port taken? log: $DIR/postgres.log)"
    fi
  fi
  local exists
  exists=$(PGPASSFILE=$PGPASS "$BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U "$DB_USER" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$DB'")
  if [ "$exists" != 1 ]; then
    PGPASSFILE=$PGPASS "$BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U "$DB_USER" "$DB"
  fi
}

orphan_group() { # the recorded group when its leader died (a crash, a SIGKILL) but workers live on
  [ -f "$MLFLOW_PIDFILE" ] && ! mlflow_pid >/dev/null || return 1
  local recorded
  read -r recorded _ <"$MLFLOW_PIDFILE"
  # Still ours: Linux never hands out a pid that is the id of a living process group.
  [ -n "$recorded" ] && kill -0 -- "-$recorded" 2>/dev/null && echo "$recorded"
}

reap_orphans() {
  local group
  if group=$(orphan_group); then
    kill -KILL -- "-$group" 2>/dev/null || true
    echo "team-server: stopped what was left of mlflow server (group $group, its leader had died)"
  fi
}

stop_mlflow() {
  local pid
  reap_orphans
  if pid=$(mlflow_pid); then
    # `mlflow server` was started as the leader of its own session: its group holds uvicorn and the workers.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
      kill -0 -- "-$pid" 2>/dev/null || break
      sleep 0.25
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    echo "team-server: stopped mlflow server (pid $pid)"
  fi
  rm -f "$MLFLOW_PIDFILE"
}

start_mlflow() {
  reap_orphans # they would hold the port
  if mlflow_pid >/dev/null; then
    echo "team-server: mlflow server already running (pid $(mlflow_pid))"
  else
    local exe
    exe=$(mlflow_bin)
    mkdir -p "$ARTIFACTS"
    # setsid: its own process group, so `stop` reaches uvicorn and its workers and nothing else.
    # Job execution (GenAI scorers, prompt optimisation) starts 7 more processes (~1 GB); encore uses none.
    PGPASSFILE=$PGPASS MLFLOW_SERVER_ENABLE_JOB_EXECUTION=${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false} \
      setsid "$exe" server \
      --backend-store-uri "$BACKEND_URI" \
      --serve-artifacts --artifacts-destination "$ARTIFACTS" \
      --host 127.0.0.1 --port "$MLFLOW_PORT" --workers "$WORKERS" \
      </dev/null >"$DIR/mlflow.log" 2>&1 &
    local pid=$!
    echo "$pid $(proc_start_time "$pid")" >"$MLFLOW_PIDFILE"
  fi
  local waited=0
  until healthy; do
    if ! mlflow_pid >/dev/null; then
      log_tail "$DIR/mlflow.log"
      rm -f "$MLFLOW_PIDFILE"
      echo "team-server: mlflow server exited before answering on $TRACKING_URI (log: $DIR/mlflow.log)" >&2
      return 1
    fi
    if [ "$waited" -ge "$TIMEOUT" ]; then
      log_tail "$DIR/mlflow.log"
      stop_mlflow >/dev/null
      echo "team-server: mlflow server did not answer $TRACKING_URI/health within ${TIMEOUT}s (log: $DIR/mlflow.log)" >&2
      return 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
}

cmd_start() {
  init_cluster
  start_postgres
  if ! start_mlflow; then
    # Leave nothing half-started: stop PostgreSQL too when this call started it.
    [ "$PG_STARTED_HERE" = 1 ] && as_pg "$BIN/pg_ctl" stop -D "$PGDATA_DIR" -m fast -w >/dev/null
    exit 1
  fi
  echo "team-server: PostgreSQL on 127.0.0.1:$PG_PORT (database $DB), artifacts in $ARTIFACTS"
  echo "team-server: MLflow UI and API on $TRACKING_URI (stop: $0 stop)"
  echo "export MLFLOW_TRACKING_URI=$TRACKING_URI"
}

cmd_stop() {
  stop_mlflow
  if pg_running; then
    as_pg "$BIN/pg_ctl" stop -D "$PGDATA_DIR" -m fast -w -t 60 >/dev/null
    echo "team-server: stopped PostgreSQL ($PGDATA_DIR)"
  fi
}

cmd_status() {
  local rc=0 pid
  if pg_running; then
    echo "postgres: running (pid $(head -n 1 "$PGDATA_DIR/postmaster.pid"), 127.0.0.1:$PG_PORT, $PGDATA_DIR)"
  else
    echo "postgres: stopped ($PGDATA_DIR)"
    rc=3
  fi
  if pid=$(mlflow_pid) && healthy; then
    echo "mlflow:   running (pid $pid, $TRACKING_URI)"
  elif pid=$(orphan_group); then
    echo "mlflow:   leader died, its workers (group $pid) live on; stop or start cleans them up"
    rc=3
  elif pid=$(mlflow_pid); then
    echo "mlflow:   not answering (pid $pid, $TRACKING_URI; log: $DIR/mlflow.log)"
    rc=3
  else
    echo "mlflow:   stopped"
    rc=3
  fi
  return "$rc"
}

case "${1:-}" in
  start | stop | status) ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
set_paths
BIN=$(pg_bin)
"cmd_$1"
