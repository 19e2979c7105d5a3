#!/usr/bin/env bash
# Installs the real PyPI client used by tests/compat/*.py into its own venv (idempotent).
# Pinned: the compat tests and docs/gob-envelope.md were written against this exact release.
set -euo pipefail
VENV="${OPENIM_PY_VENV:-$HOME/.cache/openim-venv}"
VERSION="0.1.11"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('openim-sdk-core') != '$VERSION')" 2>/dev/null; then
  "$VENV/bin/pip" install --quiet "openim-sdk-core==$VERSION"
fi
echo "$VENV/bin/python"
