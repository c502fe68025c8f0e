#!/usr/bin/env bash
# Shared by the scripts: make sure moto is installed in .venv, and start/stop it on loopback.
#   source scripts/moto.sh; moto_start; ...; moto_stop
# Sets MOTO_URL. Nothing is left running: moto_stop is also installed as an EXIT trap.

MOTO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOTO_VENV="${MOTO_VENV:-$MOTO_ROOT/.venv}"
MOTO_PID=""

moto_install() {
  if [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
    echo "==> installing moto into $MOTO_VENV (about 30 s, once)" >&2
    python3 -m venv "$MOTO_VENV"
    "$MOTO_VENV/bin/pip" install -q 'moto[server]==5.2.5'
  fi
  # Pillow's ImageCms (LittleCMS) is the independent reference of the colour-management test.
  if ! "$MOTO_VENV/bin/python" -c 'import PIL.ImageCms' 2>/dev/null; then
    echo "==> installing Pillow into $MOTO_VENV (the colour test's reference)" >&2
    "$MOTO_VENV/bin/pip" install -q 'pillow==13.0.0'
  fi
}

moto_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

moto_start() {
  moto_install
  local port; port="$(moto_free_port)"
  MOTO_LOG="$(mktemp -t moto.XXXXXX.log)"
  MOTO_IAM_LOAD_MANAGED_POLICIES=true "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$MOTO_LOG" 2>&1 &
  MOTO_PID=$!
  trap moto_stop EXIT
  MOTO_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen('$MOTO_URL/moto-api/', timeout=1)" 2>/dev/null; then
      echo "==> moto is serving on $MOTO_URL (pid $MOTO_PID)" >&2
      return 0
    fi
    sleep 0.2
  done
  echo "moto did not start; its log:" >&2; cat "$MOTO_LOG" >&2
  return 1
}

moto_stop() {
  if [ -n "$MOTO_PID" ] && kill -0 "$MOTO_PID" 2>/dev/null; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    echo "==> moto stopped" >&2
  fi
  MOTO_PID=""
}
