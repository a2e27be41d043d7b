# Shared set-up for scripts/demo.sh and scripts/test.sh: a virtual environment at .venv (override
# with SQUEEZEGAN_VENV) holding torch and this package, installed editable with the given extras.
# Sourced, not run. Re-running is cheap: pip skips what is already installed.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SQUEEZEGAN_VENV:-$REPO_ROOT/.venv}"
PYTHON_BIN="${PYTHON:-python3}"
# torch is installed on its own first so that the editable install below finds it and pulls nothing
# bigger. Override TORCH_SPEC for another build, e.g. TORCH_SPEC='torch==2.14.1'.
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"

setup_env() {
    local extras="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "[setup] creating virtual environment $VENV"
        "$PYTHON_BIN" -m venv "$VENV"
    fi
    # shellcheck disable=SC1091
    source "$VENV/bin/activate"
    if ! python -c 'import torch' >/dev/null 2>&1; then
        echo "[setup] installing $TORCH_SPEC"
        python -m pip install -q --disable-pip-version-check "$TORCH_SPEC"
    fi
    echo "[setup] installing this package with extras [$extras]"
    python -m pip install -q --disable-pip-version-check -e "$REPO_ROOT[$extras]"
}
