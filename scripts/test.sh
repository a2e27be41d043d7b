#!/usr/bin/env bash
# Sets up .venv and runs the full test suite on CPU. Extra arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
setup_env test
cd "$REPO_ROOT"
exec python -m pytest -q "$@"
