#!/usr/bin/env bash
# Build, repair and test fastslow's manylinux wheel under each CPython of this machine (pyenv):
#
#   bash tools/build_wheels.sh [--smoke] [WHEELHOUSE] [VERSION ...]     (default: 3.10 3.11 3.12 3.13)
#
# Each version goes through tools/check_wheel.sh: `pip wheel` with that interpreter, auditwheel
# repair, install alone in a fresh venv with no compiler on PATH, and the tests against the
# installed wheel: the whole suite, or with --smoke a subset that exercises every compiled
# module (about a minute). The repaired wheels are left in WHEELHOUSE (default: wheelhouse/).
# On CI machines with Docker, `cibuildwheel` builds the same set from [tool.cibuildwheel].
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=()
if [ "${1:-}" = "--smoke" ]; then
  smoke=(-m "not slow" tests/test_package.py tests/test_model.py tests/test_ode.py tests/test_sgd.py tests/test_cli.py)
  shift
fi
wheelhouse=$(realpath -m "${1:-wheelhouse}")
shift || true
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.10 3.11 3.12 3.13)
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")

find_python() {  # the newest installed patch release of version $1
  local v=$1 dir
  dir=$(ls -d "$root/versions/$v".* 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$dir" ] && [ -x "$dir/bin/python$v" ]; then echo "$dir/bin/python$v"; return; fi
  command -v "python$v" || { echo "no Python $v found (pyenv root $root)" >&2; return 1; }
}

mkdir -p "$wheelhouse"
for v in "${versions[@]}"; do
  py=$(find_python "$v")
  echo "======== Python $v ($py)"
  start=$(date +%s)
  PYTHON="$py" bash tools/check_wheel.sh "$wheelhouse" "${smoke[@]}"
  echo "======== Python $v: passed in $(( $(date +%s) - start )) s"
done
ls -l "$wheelhouse"
