# Shared by scripts/run and scripts/test: find Python 3.11+, make the virtualenv, install.
# Usage: . scripts/_env.sh; fieldcase_venv [extras]

fieldcase_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "Fieldcase needs Python 3.11 or newer." >&2
  return 1
}

fieldcase_venv() {
  local extras="${1:-}"
  local python
  python=$(fieldcase_python)
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras:+[$extras]}" \
    2> >(grep -v "^WARNING: Location" >&2)
}
