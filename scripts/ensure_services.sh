#!/usr/bin/env bash
# Make sure Redis (and, for the test suite, PostgreSQL) answer; start local ones if we can.
# Usage: scripts/ensure_services.sh [--redis-only]
set -u
redis_only=${1:-}

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || \
             (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && timeout 2 head -c 5 <&3 | grep -q PONG) 2>/dev/null; }

if ! redis_up; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "Redis is not answering on 127.0.0.1:6379: starting a local redis-server."
    mkdir -p /tmp/messaging-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /tmp/messaging-redis --logfile /tmp/messaging-redis/redis.log
    for _ in $(seq 1 50); do redis_up && break; sleep 0.1; done
  fi
fi
if ! redis_up; then
  cat >&2 <<'MSG'
Redis is needed and none answers on 127.0.0.1:6379, and no redis-server binary was found.
Install one, then run the command again:
  Debian/Ubuntu:  sudo apt-get install redis-server
  macOS:          brew install redis && brew services start redis
  Or point REDIS_URL at a Redis you already have.
MSG
  exit 1
fi

[ "$redis_only" = "--redis-only" ] && exit 0

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null || \
          psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; }
if ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  echo "PostgreSQL is not answering on 127.0.0.1:5432: starting the local cluster."
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 50); do pg_up && break; sleep 0.2; done
fi
if ! pg_up; then
  echo "PostgreSQL is not answering on 127.0.0.1:5432 (database 'test', user postgres, trust auth)." >&2
  echo "The suite runs on SQLite and PostgreSQL; start PostgreSQL or set PG_TEST_URL." >&2
  exit 1
fi
