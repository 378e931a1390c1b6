#!/usr/bin/env bash
# Idempotently create a Python >= 3.12 venv with the FinOps Foundation focus-validator.
#   SPOTCOST_FOCUS_VENV  venv location (default: $HOME/.cache/spotcost/focus-venv)
# Prints the venv path on success.
set -euo pipefail

VENV="${SPOTCOST_FOCUS_VENV:-$HOME/.cache/spotcost/focus-venv}"
PKGS=(focus-validator==2.2.1 "pyarrow<17")
WANT_VERSION=2.2.1

log() { echo "setup-validator: $*" >&2; }

py_ok() { # $1 = interpreter; true if it is Python >= 3.12 with venv support
  [ -n "${1:-}" ] && [ -x "$1" ] &&
    "$1" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null
}

find_python() {
  local c
  if command -v pyenv >/dev/null 2>&1; then
    for v in 3.12 3.13 3.14; do
      c="$(pyenv which "python$v" 2>/dev/null || true)"
      if py_ok "$c"; then echo "$c"; return 0; fi
      # `pyenv which` only resolves versions that are active; look at installed ones too
      for d in "$(pyenv root 2>/dev/null)"/versions/"$v"*/bin/python3; do
        if py_ok "$d"; then echo "$d"; return 0; fi
      done
    done
  fi
  for c in /root/.pyenv/versions/3.12*/bin/python3 /root/.pyenv/versions/3.1[3-9]*/bin/python3 \
           "$HOME"/.pyenv/versions/3.12*/bin/python3 "$HOME"/.pyenv/versions/3.1[3-9]*/bin/python3; do
    if py_ok "$c"; then echo "$c"; return 0; fi
  done
  for n in python3.12 python3.13 python3.14 python3; do
    c="$(command -v "$n" 2>/dev/null || true)"
    # skip pyenv shims: they fail when the version is not selected
    case "$c" in */.pyenv/shims/*) continue ;; esac
    if py_ok "$c"; then echo "$c"; return 0; fi
  done
  return 1
}

installed_ok() {
  [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/focus-validator" ] &&
    "$VENV/bin/python" - "$WANT_VERSION" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
import pyarrow, focus_validator  # both must import (numpy<2 vs pyarrow>=17 clash)
ok = version("focus-validator") == sys.argv[1] and int(pyarrow.__version__.split(".")[0]) < 17
sys.exit(0 if ok else 1)
EOF
}

if installed_ok; then
  log "already set up at $VENV"
  echo "$VENV"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ] || ! py_ok "$VENV/bin/python"; then
  PY="$(find_python)" || { log "no Python >= 3.12 found (pyenv or python3.12)"; exit 1; }
  log "creating venv at $VENV with $PY ($("$PY" -V 2>&1))"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
fi

# Pin the transitive dependencies too (duckdb, polars, numpy, ...) when the constraints file that was
# frozen from a known-good install sits next to this script.
CONSTRAINTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/focus-validator-constraints.txt"
CARGS=()
[ -f "$CONSTRAINTS" ] && CARGS=(-c "$CONSTRAINTS")
log "installing ${PKGS[*]} ${CARGS[*]}"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${CARGS[@]}" "${PKGS[@]}"

installed_ok || { log "installation check failed"; exit 1; }
log "ok: $("$VENV/bin/python" -c 'from importlib.metadata import version as v; print("focus-validator", v("focus-validator"), "pyarrow", v("pyarrow"))')"
echo "$VENV"
