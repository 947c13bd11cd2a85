# Shared by demo.sh and test.sh: create (or reuse) .venv at the repository root and install medssl3d
# with its test extras. Re-installs only when setup.cfg, pyproject.toml or scripts/constraints.txt changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MEDSSL3D_VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "[medssl3d] creating virtual environment $VENV with $PYTHON_BIN"
    "$PYTHON_BIN" -m venv "$VENV"
fi
STAMP="$VENV/.medssl3d-install-stamp"
WANT="$(cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" "$ROOT/scripts/constraints.txt" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ] || ! "$VENV/bin/python" -c "import medssl3d" 2>/dev/null; then
    echo "[medssl3d] installing the package and its dependencies into $VENV (first run takes a few minutes)"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # setup.cfg gives torch a range; the constraints file pins the exact CPU build (2.13.0) here,
    # so nothing pulls a CUDA build
    "$VENV/bin/python" -m pip install --quiet -c "$ROOT/scripts/constraints.txt" -e "$ROOT[test]"
    echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
export PYTHONUNBUFFERED=1
