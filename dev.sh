#!/usr/bin/env bash
# Promptreel's two commands:
#   ./dev.sh run    set up (virtualenv, dependencies, database, demo account) and run web + worker
#   ./dev.sh test   set up and run the whole test suite (extra arguments go to pytest)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
PY="$VENV/bin/python"

setup() {
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "Promptreel needs Python 3.11 or newer as '$PYTHON' (set PYTHON=/path/to/python3.11)." >&2
    exit 1
  fi
  [ -x "$PY" ] || "$PYTHON" -m venv "$VENV"
  # Reinstall only when the dependency list changes.
  local stamp="$VENV/.installed-$(cksum < pyproject.toml | cut -d' ' -f1)"
  if [ ! -f "$stamp" ]; then
    echo "Installing dependencies into $VENV ..."
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet -e ".[test]"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
  fi
}

run() {
  setup
  "$PY" manage.py migrate --noinput
  "$PY" manage.py ensure_demo_user --staff
  echo "Starting web (http://127.0.0.1:${PORT:-8000}/), worker and tracker; Ctrl-C stops all three."
  # SIGTERM to the three processes (and runserver's reloaded child), not to the whole group:
  # qcluster stops its own workers after they hand their tasks back (core/shutdown.py), as
  # under systemd's KillMode=mixed.
  PIDS=()
  trap 'trap - EXIT INT TERM; pkill -TERM -P "${PIDS[2]:-0}" 2>/dev/null; kill "${PIDS[@]}" 2>/dev/null; wait' EXIT INT TERM
  "$PY" manage.py qcluster &
  PIDS+=($!)
  "$PY" manage.py track &
  PIDS+=($!)
  "$PY" manage.py runserver "${PORT:-8000}" &
  PIDS+=($!)
  wait -n
}

run_tests() {
  setup
  "$PY" -m pytest -n "${TEST_WORKERS:-auto}" "$@"
}

case "${1:-}" in
  run) shift; run "$@" ;;
  test) shift; run_tests "$@" ;;
  *) echo "usage: ./dev.sh run | ./dev.sh test [pytest arguments]" >&2; exit 2 ;;
esac
