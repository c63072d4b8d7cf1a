#!/usr/bin/env bash
# `make run`: database, demo data, Redis, then the web server and a worker together.
# A worker that stops is started again (scripts/supervise.sh says so in a line); the web server
# keeps serving meanwhile. Ctrl-C (or SIGTERM) stops both; the web server stopping ends the script.
set -euo pipefail
cd "$(dirname "$0")/.."
export APP_ENV="${APP_ENV:-development}"
export FLASK_APP=wsgi.py
PORT="${PORT:-5000}"
DEMO_CASES="${DEMO_CASES:-300}"
BIN=.venv/bin

./scripts/ensure_services.sh --redis-only

echo "Upgrading the database..."
$BIN/flask db upgrade >/dev/null
$BIN/flask seed-demo --if-empty --cases "$DEMO_CASES" >/dev/null
TOKEN=$($BIN/flask demo-token | tail -n 1)

pids=()
stop_everything() {
  if [ ${#pids[@]} -eq 0 ]; then return; fi
  echo; echo "Stopping web server and worker..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true  # the worker finishes the job in hand first
}
trap stop_everything EXIT
# A signal ends the script at once, with the usual code, and so runs stop_everything.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# Both run in process groups of their own (set -m), so that a Ctrl-C reaches this script only
# and each gets one SIGTERM from stop_everything: the terminal's SIGINT and our SIGTERM together
# could leave gunicorn hanging, and a second signal makes RQ drop the job in hand.
set -m
./scripts/supervise.sh worker $BIN/flask worker </dev/null &
pids+=($!)
$BIN/gunicorn --bind "127.0.0.1:${PORT}" --workers 2 --threads 4 --access-logfile - wsgi:app </dev/null &
web_pid=$!
pids+=("$web_pid")
set +m

for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:${PORT}/healthz" >/dev/null 2>&1 && break; sleep 0.2
done
cat <<MSG

  Messaging server is running:  http://127.0.0.1:${PORT}/
  Demo login:                   demo@example.org / demo-password
  API token (demo admin):       ${TOKEN}
  Try:  curl -H "Authorization: Token ${TOKEN}" http://127.0.0.1:${PORT}/api/v1/cases

  Press Ctrl-C to stop the web server and the worker (a worker that stops is started again).

MSG
code=0
wait "$web_pid" || code=$?
echo "The web server exited (code ${code})."
exit "$code"
