#!/usr/bin/env bash
# Build the TFOD2 environment `.venv-tfod` (TF 2.15 + the TFOD2 source snapshot), separate from
# the default `.venv` (TF 2.20 + Model Garden). Idempotent: an existing environment whose stamp
# matches this script, the pins and setup.py is reused as it is (a cached environment).
#
#   tools/setup_tfod_env.sh            # or: make tfod-env
#   TFOD_VENV=/opt/venv-tfod tools/setup_tfod_env.sh
#
# Pins: tools/constraints-tfod.txt (frozen from a working install, so two installs match).
# Why this stack (measured, see docs/training.md "The TFOD2 environment"):
#   - `tf-object-detection-api==0.1` is a late-2022 snapshot of the TFOD2 source with generated
#     protos; installed with --no-deps because its declared apache-beam/avro-python3 are only
#     needed by dataset tools, not to train, evaluate or export.
#   - TF 2.15.1 + tf-models-official 2.15.0 import on Python 3.11 (2.12 does not).
#   - The snapshot (and tf_slim) still calls control_flow_ops.case/cond/while_loop, moved in
#     TF 2.15, and uses np.bool/np.float (NumPy < 1.24) and FreeTypeFont.getsize (Pillow < 10),
#     which cannot be pinned back (TF 2.15's SciPy/pandas need NumPy >= 1.25, tfod-seg needs
#     Pillow >= 10). tfod_seg/engines/tfod/compat.py puts them back; the start-up hook
#     `tfod_seg_tfod2_compat.pth` written below into the environment's site-packages loads it by
#     its path when the interpreter starts, so TFOD2's own scripts (`python -m
#     object_detection.model_main_tf2 ...`) and notebooks run unchanged in the environment.
#     TFOD_SEG_TFOD2_COMPAT=0 in the environment turns the hook off.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
VENV=${TFOD_VENV:-.venv-tfod}
PINS=tools/constraints-tfod.txt
STAMP="$VENV/.tfod-seg-stamp"

want=$(cat "$0" "$PINS" setup.py | sha256sum | cut -d' ' -f1)

check() {
    "$VENV/bin/python" - <<'PY' 2>/dev/null
import importlib.util, sys
for name in ("tensorflow", "object_detection", "tf_slim", "pycocotools", "pytest", "ijson", "google_crc32c",
             "tfod_seg"):
    if importlib.util.find_spec(name) is None:
        sys.exit(1)
sys.exit(0 if "tfod_seg_tfod2_compat" in sys.modules else 1)  # the start-up hook ran
PY
}

# The start-up hook: one line that site.py executes when the interpreter starts, loading
# compat.py of THIS checkout by its path (rewritten on every run, so a cached environment follows
# the checkout that uses it) and installing its post-import fixes.
write_hook() {
    local site compat
    site=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") || return 1
    compat="$(pwd -P)/tfod_seg/engines/tfod/compat.py"
    [ -d "$site" ] && [[ "$compat" != *"'"* ]] || { echo "tfod-env: cannot write the start-up hook" >&2; return 1; }
    printf '%s\n' "import os, sys, importlib.util as u; p = '$compat'; s = os.environ.get('TFOD_SEG_TFOD2_COMPAT', '1') != '0' and os.path.isfile(p) and u.spec_from_file_location('tfod_seg_tfod2_compat', p); m = s and u.module_from_spec(s); m and (sys.modules.setdefault(s.name, m), s.loader.exec_module(m), m.install())" \
        > "$site/tfod_seg_tfod2_compat.pth"
}

# tfod_seg in the environment must be this checkout (a cached environment may have been built
# from another clone); checked from / so the current directory does not shadow it.
points_here() {
    local here
    here=$(pwd -P)
    (cd / && "$VENV/bin/python" -c "import os, sys, tfod_seg
sys.exit(0 if os.path.realpath(os.path.dirname(os.path.dirname(tfod_seg.__file__))) == sys.argv[1] else 1)" "$here") 2>/dev/null
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && write_hook && check; then
    if ! points_here; then
        echo "tfod-env: re-pointing tfod_seg in $VENV at $(pwd -P)"
        "$VENV/bin/python" -m pip --disable-pip-version-check install -q --no-deps -e . \
            2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    fi
    echo "tfod-env: reusing $VENV (stamp matches $PINS)"
    exit 0
fi

echo "tfod-env: building $VENV with $PYTHON (downloads TF 2.15, takes minutes)"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# pip warns once per package about index locations missing on this machine: keep the log readable.
quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
quiet "${PIP[@]}" install -q --upgrade "pip>=24"

# 1. The TF 2.15 stack with its dependencies, pinned.
quiet "${PIP[@]}" install -q -c "$PINS" \
    tensorflow==2.15.1 tf-models-official==2.15.0 tf-keras==2.15.1 tensorflow-io==0.37.1 \
    tf-slim pycocotools scipy pandas contextlib2 lxml matplotlib pillow six Cython \
    pyparsing==2.4.7 \
    tqdm pyyaml opencv-python-headless pytest pytest-timeout hypothesis ijson google-crc32c
# 2. The TFOD2 source snapshot, without its declared (unneeded) dependencies; lvis (imported by
#    TFOD2's evaluation code) also without its own, which would add opencv-python beside the
#    opencv-python-headless that tf-models-official brings (two cv2 builds overwrite each other).
quiet "${PIP[@]}" install -q --no-deps -c "$PINS" tf-object-detection-api==0.1 lvis
# 3. This package, editable, without its TF 2.20 dependencies.
quiet "${PIP[@]}" install -q --no-deps -e .

write_hook
check || { echo "tfod-env: $VENV is incomplete after install" >&2; exit 1; }
echo "$want" > "$STAMP"
echo "tfod-env: ready: $VENV/bin/python"
