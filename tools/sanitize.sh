#!/usr/bin/env bash
# Build fastslow with AddressSanitizer + UndefinedBehaviorSanitizer in a fresh venv and run the test
# suite under it (issue 8). Any ASan report (heap overflow, use after free, ...) or UBSan report
# (signed overflow, misaligned access, out-of-bounds shift, ...) aborts the process, failing the test.
#
#   bash tools/sanitize.sh [PYTEST ARGS...]      (default: the whole suite, slow tests included)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install -q --upgrade pip
echo "== build with -fsanitize=address,undefined"
"$py" -m pip install -q ".[test,sweep]" -C cmake.define.FASTSLOW_SANITIZE=ON -C cmake.build-type=RelWithDebInfo \
  -C build-dir="$work/build"
libasan=$(g++ -print-file-name=libasan.so)
# libstdc++ preloaded too: the python binary does not link it, and ASan's __cxa_throw interceptor
# must find the real one at start-up (else any C++ exception, ours or matplotlib's, aborts)
libstdcxx=$(g++ -print-file-name=libstdc++.so)
echo "== the test suite under ASan + UBSan ($libasan)"
mkdir -p "$work/run"
cp -r "$src/tests" "$src/examples" "$src/pyproject.toml" "$work/run/"
cd "$work/run"
# Python's own allocations are not freed at exit by design: leak checking off. UBSan: stop at the
# first report. OpenBLAS and libgomp are not instrumented (their own code is not checked).
# Reports go to files (pytest captures stderr, and an aborted process would lose it).
mkdir -p "$work/reports"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:check_initialization_order=1:log_path=$work/reports/asan
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$work/reports/ubsan
# children started by the tests keep the preload; instrumented code is 2-3x slower: longer alarms
export FASTSLOW_SANITIZER_RUN=1 FASTSLOW_FUZZ_ALARM=300
rc=0
LD_PRELOAD="$libasan:$libstdcxx" "$py" -m pytest -q -p no:cacheprovider -ra "$@" || rc=$?
if compgen -G "$work/reports/*" > /dev/null; then
  echo "== sanitizer reports"
  cat "$work"/reports/*
  rc=1
fi
[ "$rc" -eq 0 ] && echo "== sanitizer run passed: no ASan or UBSan report" || echo "== sanitizer run FAILED (rc $rc)"
exit "$rc"
