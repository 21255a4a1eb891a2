"""Transitional shim: the analysis is the package ``fastslow/analysis/``.

The editable install (scikit-build-core) maps ``fastslow.analysis`` to this file until it is
reinstalled (``pip install -e .``); this file makes that mapping load the package. Delete it once the
editable install has been rebuilt (or with ``FASTSLOW_DEV_SWEEP_PKG=1``, which drops stale mappings).
"""

import os as _os

__path__ = [_os.path.join(_os.path.dirname(__file__), "analysis")]
__package__ = "fastslow.analysis"
if __spec__ is not None:  # noqa: F821
    __spec__.submodule_search_locations = __path__  # noqa: F821
_init = _os.path.join(__path__[0], "__init__.py")
with open(_init, encoding="utf-8") as _fh:
    exec(compile(_fh.read(), _init, "exec"))
del _fh, _init, _os
