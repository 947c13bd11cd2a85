#!/usr/bin/env bash
# MONAI Label integration test: real BundleInferTask and BundleTrainTask (monailabel 0.8.5) on the
# pancreas_ct_ssl bundle (tests/integration/test_monailabel.py). Extra arguments go to pytest.
#
# MONAI Label's task classes import torchvision, which does not import beside the project's torch build,
# so this runs in an environment of its own: built once from scripts/monailabel-requirements.txt plus
# monailabel (--no-deps) under $MEDSSL3D_CACHE (default ~/.cache/medssl3d), keyed by a hash of what goes
# into it, and reused afterwards. medssl3d is then installed into it the way a MONAI Label user would
# (pip install -e, which must keep that environment's torch). Needs about 12 GB free to build (skipped
# with a message below that); once built, a run takes about 2 minutes (1 min 40 s measured).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON_BIN="${PYTHON:-$(command -v python3.11 || command -v python3)}"
REQ="$ROOT/scripts/monailabel-requirements.txt"
MONAILABEL="monailabel==0.8.5"
NEED_GB=12
CACHE="${MEDSSL3D_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/medssl3d}"
KEY="$( { cat "$REQ"; echo "$MONAILABEL"; "$PYTHON_BIN" -c 'import sys; print(sys.version)'; } | sha256sum | cut -c1-16)"
ENV="$CACHE/monailabel-$KEY"
log() { echo "[medssl3d monailabel] $*"; }
mkdir -p "$CACHE"

if [ ! -f "$ENV/.complete" ]; then
    exec 9>"$CACHE/monailabel.lock"
    flock 9  # one build at a time; a second run waits for it and then reuses it
    if [ ! -f "$ENV/.complete" ]; then
        free_gb=$(( $(df -Pk "$CACHE" | awk 'NR==2 {print $4}') / 1024 / 1024 ))
        if [ "$free_gb" -lt "$NEED_GB" ]; then
            log "SKIPPED: building the MONAI Label environment needs about $NEED_GB GB free under $CACHE, only $free_gb GB are;"
            log "free some space or set MEDSSL3D_CACHE to a larger disk, then run scripts/test_monailabel.sh again."
            exit 0
        fi
        log "building $ENV (torch 2.14.1 + torchvision, MONAI, $MONAILABEL; about 7 GB, a few minutes)"
        rm -rf "$ENV"  # a build cut off before .complete is started again
        "$PYTHON_BIN" -m venv "$ENV"
        if ! { "$ENV/bin/python" -m pip install --quiet --upgrade pip &&
               "$ENV/bin/python" -m pip install --quiet -r "$REQ" &&
               "$ENV/bin/python" -m pip install --quiet --no-deps "$MONAILABEL"; } >"$CACHE/monailabel-build.log" 2>&1; then
            tail -n 40 "$CACHE/monailabel-build.log"
            log "FAILED: building $ENV (whole log: $CACHE/monailabel-build.log)"
            exit 1
        fi
        touch "$ENV/.complete"
        # environments of older requirement sets are not used any more
        find "$CACHE" -maxdepth 1 -name 'monailabel-*' -type d ! -path "$ENV" -exec rm -rf {} +
    fi
    exec 9>&-
else
    log "reusing $ENV"
fi

PY="$ENV/bin/python"
torch_before="$("$PY" -c 'import torch; print(torch.__version__)')"
log "installing medssl3d into it as a MONAI Label user would: pip install -e $ROOT"
# pip's resolver notes that monailabel's own (server) requirements are missing: expected with --no-deps
if ! "$PY" -m pip install --quiet -e "$ROOT" >"$ENV/pip-install-medssl3d.log" 2>&1; then
    cat "$ENV/pip-install-medssl3d.log"
    log "FAILED: pip install -e $ROOT into $ENV"
    exit 1
fi
torch_after="$("$PY" -c 'import torch; print(torch.__version__)')"
if [ "$torch_before" != "$torch_after" ]; then
    log "FAILED: installing medssl3d replaced the environment's torch $torch_before with $torch_after"
    exit 1
fi
log "torch $torch_after kept; $("$PY" -c 'import monai, monailabel; print("monai", monai.__version__, "monailabel", monailabel.__version__)')"
"$PY" -c 'import medssl3d, monailabel.tasks.infer.bundle, monailabel.tasks.train.bundle'

if [ -z "${MEDSSL3D_REAL_DATA:-}" ] && [ -d "$ROOT/../shared/data" ]; then
    export MEDSSL3D_REAL_DATA="$(cd "$ROOT/../shared/data" && pwd)"
fi
cd "$ROOT"
export PYTHONUNBUFFERED=1
exec timeout 600 "$PY" -m pytest -q -p no:cacheprovider tests/integration/test_monailabel.py "$@"
