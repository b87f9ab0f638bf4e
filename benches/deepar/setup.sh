#!/usr/bin/env bash
# Creates the virtual environment of the DeepAR benchmark (benches/deepar/.venv, or
# $PARTICAST_DEEPAR_VENV) with the pinned GluonTS and PyTorch, unless it is already there, and
# prints its python. Called by `cargo bench --bench deepar`; needs python3 and PyPI.
set -euo pipefail
cd "$(dirname "$0")"
venv="${PARTICAST_DEEPAR_VENV:-$PWD/.venv}"
if ! "$venv/bin/python" -c "import gluonts, torch, lightning" >/dev/null 2>&1; then
    echo "setting up $venv (torch, gluonts; a few GB the first time)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip >&2
    "$venv/bin/pip" install --quiet -r requirements.txt >&2
fi
echo "$venv/bin/python"
