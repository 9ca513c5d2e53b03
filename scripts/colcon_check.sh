#!/usr/bin/env bash
# Build and test the package as a ROS 2 ament_python package in a throw-away colcon workspace.
# Checks what a robot's `colcon build` gives: console scripts in lib/<pkg>, launch and config
# files in share/<pkg>, the ament index marker, and that `colcon test` runs the lint tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pkg=treeaspp_depth_ros
ws="$(mktemp -d)"
trap 'rm -rf "$ws"' EXIT
mkdir -p "$ws/src/$pkg"
tar -C "$root" --exclude=./.venv --exclude=./.git --exclude=./build --exclude=./install \
    --exclude=./log --exclude=./demo_output --exclude='*.egg-info' --exclude=__pycache__ -cf - . \
  | tar -C "$ws/src/$pkg" -xf -
cd "$ws"
colcon build --event-handlers console_direct- >"$ws/build.log" 2>&1 || { cat "$ws/build.log"; exit 1; }
for f in "install/$pkg/lib/$pkg/depth_node" "install/$pkg/lib/$pkg/treeaspp-depth" \
         "install/$pkg/lib/$pkg/depth_dds_profile" \
         "install/$pkg/share/$pkg/launch/depth.launch.py" "install/$pkg/share/$pkg/config/depth_node.yaml" \
         "install/$pkg/share/$pkg/package.xml" \
         "install/$pkg/share/ament_index/resource_index/packages/$pkg"; do
  [ -e "$f" ] || { echo "colcon build did not install $f" >&2; ls -R install >&2; exit 1; }
done
weights=(install/$pkg/lib/python3*/site-packages/$pkg/demo/default_weights.pt)
[ -f "${weights[0]}" ] || { echo "colcon build did not install the demo's default weights" >&2; exit 1; }
colcon test --packages-select "$pkg" --pytest-args -m linter --event-handlers console_direct- \
  >"$ws/test.log" 2>&1 || true
colcon test-result --verbose --test-result-base build/$pkg || { cat "$ws/test.log"; exit 1; }
echo "colcon build + colcon test: OK"
