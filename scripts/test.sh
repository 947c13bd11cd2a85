#!/usr/bin/env bash
# Run the test suite: creates/reuses .venv, installs medssl3d, runs pytest.
# Extra arguments go to pytest, e.g. `scripts/test.sh tests/data -x`.
# Real-data tests run when MEDSSL3D_REAL_DATA points at the shared data folder (default: ../shared/data if present).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT"
if [ -z "${MEDSSL3D_REAL_DATA:-}" ] && [ -d "$ROOT/../shared/data" ]; then
    export MEDSSL3D_REAL_DATA="$(cd "$ROOT/../shared/data" && pwd)"
fi
exec python -m pytest -q "$@"
