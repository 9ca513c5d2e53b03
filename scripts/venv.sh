#!/usr/bin/env bash
# Create or refresh .venv/ at the repository root, then run the given command inside it.
# Usage: scripts/venv.sh COMMAND [ARGS...]   (e.g. scripts/venv.sh treeaspp-depth demo)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.requirements.sha256"
want="$(cat "$root/requirements.txt" "$root/setup.py" "$root/setup.cfg" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  echo "[venv] creating $venv" >&2
  python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[venv] installing pinned requirements (first run: a few minutes)" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip 'setuptools<80' wheel 2>&1 | grep -v 'is ignored' >&2 || true
  "$venv/bin/python" -m pip install --quiet -r "$root/requirements.txt" 2>&1 | grep -v 'is ignored' >&2 || true
  "$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$root" 2>&1 | grep -v 'is ignored' >&2 || true
  "$venv/bin/python" -c "import torch, torchvision, rclpy, rosbags, cv2, treeaspp_depth_ros, treeaspp_depth_training" \
    || { echo "[venv] installation failed (see pip output above)" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"
cd "$root"
if [ "$#" -eq 0 ]; then
  exit 0
fi
exec "$@"
