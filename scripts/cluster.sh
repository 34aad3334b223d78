#!/usr/bin/env bash
# A real Spark standalone cluster on this machine: one master and N workers on 127.0.0.1,
# started with bin/spark-class from the pip-installed pyspark.
#
#   scripts/cluster.sh start|stop|status
#
# Settings (environment): CLUSTER_DIR (logs and pid files; default .cluster),
# SPARK_MASTER_PORT (7177), SPARK_MASTER_WEBUI_PORT (8180), SPARK_WORKER_WEBUI_PORT (8181: worker i
# uses 8181+i), WORKERS (2), WORKER_CORES (1), WORKER_MEMORY (2g), PYTHON (.venv/bin/python).
# `stop` stops exactly the processes `start` recorded (each started in its own process group,
# so a worker's executors go with it), nothing else.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLUSTER_DIR=${CLUSTER_DIR:-$ROOT/.cluster}
MASTER_PORT=${SPARK_MASTER_PORT:-7177}
MASTER_WEBUI_PORT=${SPARK_MASTER_WEBUI_PORT:-8180}
WORKER_WEBUI_PORT=${SPARK_WORKER_WEBUI_PORT:-8181}
WORKERS=${WORKERS:-2}
WORKER_CORES=${WORKER_CORES:-1}
WORKER_MEMORY=${WORKER_MEMORY:-2g}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
MASTER_URL="spark://127.0.0.1:$MASTER_PORT"

spark_home() {
  "$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))'
}

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for_port() {
  local port=$1 tries=${2:-60}
  for _ in $(seq "$tries"); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 1
  done
  return 1
}

launch() {  # name, then the spark-class arguments
  local name=$1; shift
  if alive "$CLUSTER_DIR/$name.pid"; then
    echo "$name already running (pid $(cat "$CLUSTER_DIR/$name.pid"))"; return 0
  fi
  # setsid: its own process group, so stop can end it with everything it started.
  SPARK_HOME=$SPARK_HOME PYSPARK_PYTHON=$PYTHON SPARK_LOCAL_IP=127.0.0.1 \
    setsid "$SPARK_HOME/bin/spark-class" "$@" >"$CLUSTER_DIR/$name.log" 2>&1 < /dev/null &
  echo $! >"$CLUSTER_DIR/$name.pid"
}

start() {
  mkdir -p "$CLUSTER_DIR"
  SPARK_HOME=$(spark_home)
  launch master org.apache.spark.deploy.master.Master --host 127.0.0.1 \
    --port "$MASTER_PORT" --webui-port "$MASTER_WEBUI_PORT"
  wait_for_port "$MASTER_PORT" || { echo "master did not start; see $CLUSTER_DIR/master.log"; stop; exit 1; }
  for i in $(seq 1 "$WORKERS"); do
    launch "worker$i" org.apache.spark.deploy.worker.Worker --host 127.0.0.1 \
      --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" \
      --webui-port $((WORKER_WEBUI_PORT + i - 1)) --work-dir "$CLUSTER_DIR/work$i" "$MASTER_URL"
  done
  local alive_workers=0
  for _ in $(seq 90); do
    alive_workers=$("$PYTHON" - "$MASTER_WEBUI_PORT" <<'PY' 2>/dev/null || echo 0
import json, sys, urllib.request
state = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/json/", timeout=2))
print(state.get("aliveworkers", 0))
PY
)
    [[ "$alive_workers" -ge "$WORKERS" ]] && break
    sleep 1
  done
  [[ "$alive_workers" -ge "$WORKERS" ]] || {
    echo "only $alive_workers of $WORKERS workers registered; see $CLUSTER_DIR/worker*.log"
    stop; exit 1; }
  echo "$MASTER_URL" >"$CLUSTER_DIR/master.url"
  echo "cluster up: $MASTER_URL ($WORKERS workers x $WORKER_CORES cores), UI http://127.0.0.1:$MASTER_WEBUI_PORT"
}

stop() {
  [[ -d "$CLUSTER_DIR" ]] || { echo "no cluster in $CLUSTER_DIR"; return 0; }
  local pidfile pid
  for pidfile in "$CLUSTER_DIR"/worker*.pid "$CLUSTER_DIR"/master.pid; do
    [[ -f "$pidfile" ]] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -KILL -- "-$pid" 2>/dev/null || true
      echo "stopped $(basename "$pidfile" .pid) (pid $pid)"
    fi
    rm -f "$pidfile"
  done
  rm -f "$CLUSTER_DIR/master.url"
}

status() {
  local running=0 pidfile
  for pidfile in "$CLUSTER_DIR"/master.pid "$CLUSTER_DIR"/worker*.pid; do
    [[ -f "$pidfile" ]] || continue
    if alive "$pidfile"; then
      echo "$(basename "$pidfile" .pid): running (pid $(cat "$pidfile"))"; running=1
    else
      echo "$(basename "$pidfile" .pid): not running"
    fi
  done
  [[ $running == 1 ]] && echo "master: $MASTER_URL" && return 0
  echo "cluster not running"; return 3
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
