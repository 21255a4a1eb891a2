"""The files of a sweep store: a local directory or an fsspec file system, behind one small
interface (bounded reads of regular files only, atomic writes), so every read and write of
:mod:`~fastslow.sweep.store` goes through the same checks."""

from __future__ import annotations

import errno
import os
import stat
import uuid
from pathlib import Path
from typing import Any
from collections.abc import Sequence

from .layout import Unreadable
from .spec import SweepError

__all__ = ["store_files", "LocalFiles", "RemoteFiles"]


class LocalFiles:
    """A store directory: bounded reads of regular files, atomic writes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)
        self._dirs: set[str] = set()

    def read(self, key: str, limit: int) -> bytes | None:
        """The file's bytes; None if it does not exist; :class:`Unreadable` if it is not a regular
        file or holds more than ``limit`` bytes."""
        path = os.path.join(self.root, key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise Unreadable("a symbolic link, not a regular file") from None
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise Unreadable("not a regular file")
            if st.st_size > limit:
                raise Unreadable(f"{st.st_size} bytes, more than the {limit} its metadata allow")
            parts, total = [], 0
            while True:
                b = os.read(fd, min(limit + 1 - total, 1 << 24))
                if not b:
                    break
                parts.append(b)
                total += len(b)
                if total > limit:
                    raise Unreadable(f"more than the {limit} bytes its metadata allow")
            return b"".join(parts)
        finally:
            os.close(fd)

    def write(self, key: str, parts: Sequence[bytes], *, sync: bool = False) -> None:
        """Write ``key`` atomically (``.NAME.PID.RANDOM.tmp``, then rename)."""
        path = os.path.join(self.root, key)
        folder, name = os.path.split(path)
        if folder not in self._dirs:
            os.makedirs(folder, exist_ok=True)
            self._dirs.add(folder)
        tmp = os.path.join(folder, f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            try:
                for p in parts:
                    view = memoryview(p)
                    while view:
                        view = view[os.write(fd, view):]
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        if sync:
            _fsync_dir(folder)

    def remove(self, key: str) -> None:
        try:
            os.unlink(os.path.join(self.root, key))
        except FileNotFoundError:
            pass

    def names(self, folder: str = "") -> list[str]:
        try:
            return sorted(os.listdir(os.path.join(self.root, folder)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def is_dir(self, key: str) -> bool:
        return os.path.isdir(os.path.join(self.root, key)) and not os.path.islink(os.path.join(self.root, key))

    def remove_stale_temporaries(self) -> None:
        """Temporary files of writers that are gone (killed mid-write; their PID no longer runs)."""
        for folder, _, files in os.walk(self.root):
            for f in files:
                if not (f.startswith(".") and f.endswith(".tmp")):
                    continue
                try:
                    pid = int(f.rsplit(".", 3)[-3])
                    os.kill(pid, 0)
                    continue  # its writer still runs
                except (ValueError, IndexError, ProcessLookupError):
                    pass
                except PermissionError:
                    continue
                try:
                    os.unlink(os.path.join(folder, f))
                except OSError:
                    pass


class RemoteFiles:
    """A store on an fsspec file system (object stores: a put is atomic)."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        try:
            import fsspec
        except ImportError:
            raise SweepError(f"store: {url} is a URL; fsspec is needed for it (pip install fsspec)") from None
        self.url = url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.fs, self.path = fsspec.core.url_to_fs(self.url, **self.storage_options)

    def read(self, key: str, limit: int) -> bytes | None:
        p = f"{self.path}/{key}"
        try:
            info = self.fs.info(p)
        except FileNotFoundError:
            return None
        if info.get("type") not in (None, "file"):
            raise Unreadable("not a file")
        if (info.get("size") or 0) > limit:
            raise Unreadable(f"{info.get('size')} bytes, more than the {limit} its metadata allow")
        data = self.fs.cat_file(p)
        if len(data) > limit:
            raise Unreadable(f"more than the {limit} bytes its metadata allow")
        return data

    def write(self, key: str, parts: Sequence[bytes], *, sync: bool = False) -> None:
        self.fs.pipe_file(f"{self.path}/{key}", b"".join(parts))

    def remove(self, key: str) -> None:
        try:
            self.fs.rm_file(f"{self.path}/{key}")
        except FileNotFoundError:
            pass

    def names(self, folder: str = "") -> list[str]:
        try:
            return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(f"{self.path}/{folder}".rstrip("/"),
                                                                               detail=False))
        except FileNotFoundError:
            return []

    def is_dir(self, key: str) -> bool:
        return self.fs.isdir(f"{self.path}/{key}")

    def remove_stale_temporaries(self) -> None:
        pass


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:  # pragma: no cover - file systems whose directories cannot be fsynced
        pass


def store_files(store: Any, storage_options: dict[str, Any] | None = None) -> Any:
    """The files of ``store``: a directory (a path, or ``file://`` URL) or an fsspec URL."""
    if not isinstance(store, (str, os.PathLike)):
        raise SweepError(f"store: expected a directory or a URL, got {type(store).__name__}")
    s = os.fspath(store)
    if isinstance(s, bytes) or "\x00" in s or not s:
        raise SweepError(f"store: not a usable path: {s!r}")
    if "://" in s and not s.startswith("file://"):
        return RemoteFiles(s, storage_options)
    return LocalFiles(Path(s.removeprefix("file://")).absolute())
