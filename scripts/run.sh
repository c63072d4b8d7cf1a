#!/usr/bin/env bash
# `make run`: database, demo data, Redis, then the web server and a worker together.
set -euo pipefail
cd "$(dirname "$0")/.."
export APP_ENV="${APP_ENV:-development}"
export FLASK_APP=wsgi.py
PORT="${PORT:-5000}"
BIN=.venv/bin

./scripts/ensure_services.sh --redis-only

echo "Upgrading the database..."
$BIN/flask db upgrade >/dev/null
$BIN/flask seed-demo --if-empty --cases 300 >/dev/null
TOKEN=$($BIN/flask demo-token | tail -n 1)

pids=()
cleanup() {
  echo; echo "Stopping web server and worker..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

$BIN/flask worker &
pids+=($!)
$BIN/gunicorn --bind "127.0.0.1:${PORT}" --workers 2 --threads 4 --access-logfile - wsgi:app &
pids+=($!)

for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:${PORT}/healthz" >/dev/null 2>&1 && break; sleep 0.2
done
cat <<MSG

  Messaging server is running:  http://127.0.0.1:${PORT}/
  Demo login:                   demo@example.org / demo-password
  API token (demo admin):       ${TOKEN}
  Try:  curl -H "Authorization: Token ${TOKEN}" http://127.0.0.1:${PORT}/api/v1/cases

  Press Ctrl-C to stop the web server and the worker.

MSG
wait -n "${pids[@]}"
