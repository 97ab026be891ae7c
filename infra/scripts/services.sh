# Starts the local services the project needs when they are not running. Sourced by infra/scripts/dev
# and .ci/run; the commands are the ones this workplace's machines start them with.

ensure_postgres() {
  local host=$1 port=$2
  if pg_isready -q -h "$host" -p "$port" 2>/dev/null; then return 0; fi
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  for _ in $(seq 1 30); do
    pg_isready -q -h "$host" -p "$port" 2>/dev/null && return 0
    sleep 1
  done
  echo "PostgreSQL is not answering on $host:$port; start it and retry." >&2
  return 1
}

ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return 0; fi
  if command -v redis-server >/dev/null 2>&1; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
  for _ in $(seq 1 15); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "Redis is not answering on 127.0.0.1:6379." >&2
  return 1
}

# For benchmarks: says so when the server runs without autovacuum (this workplace's CI machines
# do, in conf.d/90-ci.conf), since that shapes every figure of a run: dead rows and GIN pending
# lists are never cleaned in the background, and nothing is analyzed after a bulk load.
report_autovacuum() {
  local host=$1 port=$2
  if [ "$(psql -Atq -h "$host" -p "$port" -U postgres -d postgres -c 'show autovacuum' 2>/dev/null)" = off ]; then
    echo "note: PostgreSQL on $host:$port runs with autovacuum off; production runs it (figures here" \
      "carry every dead row and GIN pending-list cleanup of the run, and stale statistics after a bulk load)"
  fi
}
