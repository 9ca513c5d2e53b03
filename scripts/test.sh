#!/usr/bin/env bash
# Run every test: set up .venv/, run pytest (unit, reference, DDS, bag, training and lint
# tests), then build and test the package as a ROS 2 package with colcon.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/venv.sh" python -m pytest -ra --durations=12 "$@"
"$root/scripts/venv.sh" bash "$root/scripts/colcon_check.sh"
