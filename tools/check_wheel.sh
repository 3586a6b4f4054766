#!/usr/bin/env bash
# Package check (CI): build the sdist, build the wheel from it, install the wheel with the pinned
# stack into a clean virtualenv (no --system-site-packages, no access to the checkout), and run
# the commands that need the shipped templates and label maps from outside the checkout.
# pip's download cache (~/.cache/pip) is reused, and the virtualenv is cached (see below).
#   PYTHON=python3.11 tools/check_wheel.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
BUILD_PY=${BUILD_PY:-$repo/.venv/bin/python}   # any Python with setuptools and pip
work=$(mktemp -d "${TMPDIR:-/tmp}/tfod-seg-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$BUILD_PY" setup.py -q sdist -d "$work/sdist" >/dev/null
"$BUILD_PY" -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" "$work"/sdist/tfod-seg-*.tar.gz
# The clean virtualenv (no system site-packages) is cached outside the checkout, keyed by the
# pins and setup.py (the wheel's requirements): when they change it is rebuilt from scratch with
# `pip install -c constraints.txt WHEEL` (the wheel's own dependencies); otherwise only tfod-seg
# is reinstalled from the new wheel and `pip check` confirms every requirement still holds.
venv=${TFOD_SEG_WHEEL_VENV:-$HOME/.cache/tfod-seg/venv-wheel}
stamp=$(cat setup.py constraints.txt | sha256sum | cut -c1-16)
if [ -n "${TFOD_SEG_WHEEL_FRESH:-}" ] || [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]; then  # FRESH=1: rebuild
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade "pip>=24"
  "$venv/bin/python" -m pip install -q --no-compile -c constraints.txt "$work"/dist/tfod_seg-*.whl
  echo "$stamp" > "$venv/.stamp"
else
  "$venv/bin/python" -m pip install -q --no-deps --force-reinstall "$work"/dist/tfod_seg-*.whl
fi
"$venv/bin/python" -m pip check

cd "$work"   # outside the checkout: only the installed package is importable
tfod="$venv/bin/tfod-seg"
"$venv/bin/python" - <<'PY'
import tfod_seg, os
assert "site-packages" in tfod_seg.__file__, tfod_seg.__file__
PY
"$tfod" templates | tee templates.txt
grep -q garden_cpu_demo templates.txt
grep -q tfod_mask_rcnn_resnet50_fpn_640 templates.txt
label_maps=$("$venv/bin/python" -c 'from tfod_seg.config.templates import LABEL_MAP_DIR; print(LABEL_MAP_DIR)')
mkdir records
: > records/train-00000-of-00001.tfrecord   # empty shards are valid TFRecord files
: > records/val-00000-of-00001.tfrecord
"$tfod" config --template garden_cpu_demo --label-map "$label_maps/shapes_label_map.pbtxt" \
  --train 'records/train-*.tfrecord' --val 'records/val-*.tfrecord' --model-dir model --out pipeline.yaml
"$tfod" config --template tfod_mask_rcnn_resnet50_fpn_640 --label-map "$label_maps/coco_label_map.pbtxt" \
  --train 'records/train-*.tfrecord' --val 'records/val-*.tfrecord' --model-dir model2 --out pipeline.config
"$tfod" demo --help >/dev/null
echo "check_wheel: wheel installs with the pinned stack; templates, config and demo --help work outside the checkout"
