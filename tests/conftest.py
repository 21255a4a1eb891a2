"""Shared test helpers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest


# Wall-clock limits (Ctrl-C within a second, ...) hold for the normal build; under
# tools/sanitize.sh the instrumented code and ASan's allocator (freeing millions of objects at
# exit) run 2-3x slower, so the limits stretch by this factor there.
TIME_SCALE = 3.0 if os.environ.get("FASTSLOW_SANITIZER_RUN") == "1" else 1.0


def clean_env() -> dict[str, str]:
    """The environment without variables that would change how libraries are found (under
    ``tools/sanitize.sh`` the preloaded ASan runtime stays: an instrumented extension needs it)."""
    keep = ("LD_PRELOAD",) if os.environ.get("FASTSLOW_SANITIZER_RUN") == "1" else ()
    return {k: v for k, v in os.environ.items()
            if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD", "PYTHONPATH") or k in keep}


@pytest.fixture
def interrupt_subprocess():
    """Run ``code`` in a fresh Python, wait for it to print 'ready', send SIGINT after ``delay`` s;
    return (return code, stdout, seconds from the signal to the exit)."""

    def run(code: str, delay: float = 1.0) -> tuple[int, str, float]:
        # A process started in the background by a non-interactive shell inherits SIGINT as
        # ignored, and Python then installs no handler: restore Python's own one first.
        code = "import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n" + code
        p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=clean_env())
        assert p.stdout.readline().strip() == "ready"
        time.sleep(delay)
        sent = time.monotonic()
        run.sent = sent  # type: ignore[attr-defined]  # CLOCK_MONOTONIC: comparable with the child's
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=30)
        return p.returncode, out, time.monotonic() - sent

    return run
