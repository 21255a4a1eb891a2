"""Load the OpenBLAS of the ``scipy-openblas32`` wheel before the compiled core.

The extension carries an rpath to ``../scipy_openblas32/lib`` (the usual site-packages layout).
Loading the library here as well makes the import work in every other layout too (editable
installs, ``--target`` directories, split system/user site-packages), with no
``LD_LIBRARY_PATH``: once a library with the same soname is loaded, the dynamic linker uses it.
"""

from __future__ import annotations

import ctypes
import os


def preload_openblas() -> None:
    """Load ``libscipy_openblas`` globally (a no-op when it is already loaded)."""
    import scipy_openblas32

    path = os.path.join(scipy_openblas32.get_lib_dir(), scipy_openblas32.get_library(True))
    ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
