# Finding and running Spin for the project's scripts. Sourced by infra/scripts/dev, spin-tier, fuzz
# and bench-spin.
#
# Users install Spin the official way (it is then on PATH); machines that cannot reach its release
# downloads use the copy beside the project in ../shared/bin/spin.

# Prints the path of the Spin CLI, or nothing (exit 1) when there is none.
find_spin() {
  if command -v spin >/dev/null 2>&1; then
    command -v spin
    return 0
  fi
  local shared
  shared="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/../shared/bin/spin"
  if [ -x "$shared" ]; then
    echo "$shared"
    return 0
  fi
  return 1
}

# Prints a free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until GET $1/readyz answers 200, for at most $2 seconds (default 60). Fails when the
# process $3 (when given) has exited.
wait_ready() {
  local base=$1 limit=${2:-60} pid=${3:-}
  for _ in $(seq 1 $((limit * 4))); do
    if curl -fsS -o /dev/null "$base/readyz" 2>/dev/null; then return 0; fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "the server exited before it was ready" >&2
      return 1
    fi
    sleep 0.25
  done
  echo "$base/readyz did not answer 200 within ${limit}s" >&2
  return 1
}

# Starts `spin up` in the background on 127.0.0.1:$1 with the Redis runtime config and the
# SPIN_VARIABLE_* of the caller's environment; its output goes to $2; $3 is the manifest (default
# spin.toml). Sets SPIN_PID.
start_spin() {
  local port=$1 log=$2 manifest=${3:-spin.toml} spin
  spin=$(find_spin) || { echo "Spin is not installed (https://spinframework.dev/install)" >&2; return 1; }
  "$spin" up -f "$manifest" --listen "127.0.0.1:$port" \
    --runtime-config-file infra/runtime-config/local.toml >"$log" 2>&1 &
  SPIN_PID=$!
}

# Stops the `spin up` started by start_spin.
stop_spin() {
  if [ -n "${SPIN_PID:-}" ] && kill -0 "$SPIN_PID" 2>/dev/null; then
    kill "$SPIN_PID" 2>/dev/null || true
    wait "$SPIN_PID" 2>/dev/null || true
  fi
  SPIN_PID=
}
