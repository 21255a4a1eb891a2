"""The installed version of fastslow (from the package metadata)."""

from __future__ import annotations

try:
    from importlib.metadata import version as _version

    __version__ = _version("fastslow")
except Exception:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0+unknown"
