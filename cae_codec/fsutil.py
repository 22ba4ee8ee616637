"""Writing users' files safely: all or nothing, never clobbering unless asked."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cae_codec.errors import CaecError


def atomic_write(path: Path, data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory.

    The file appears whole or not at all, also when the process is interrupted (the temp
    file is removed on any exception, KeyboardInterrupt included). Without ``force`` an
    existing file is never replaced, checked atomically by hard-linking the temp file into
    place (which fails if the name exists) where the filesystem allows links.
    """
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise CaecError(f"{path}: directory {directory} does not exist")
    if not force and (path.exists() or path.is_symlink()):
        raise CaecError(f"{path} exists (use --force to overwrite)")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as e:  # a read-only folder or mount, /proc, a full disk...
        raise CaecError(f"cannot write {path}: {e.strerror or e}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.chmod(0o666 & ~_umask())
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise CaecError(f"{path} exists (use --force to overwrite)") from None
            except OSError:  # filesystems without hard links
                if path.exists():
                    raise CaecError(f"{path} exists (use --force to overwrite)") from None
                os.replace(tmp, path)
    except OSError as e:
        raise CaecError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_bytes(path: Path, label: str | None = None) -> bytes:
    """The whole file, or one CaecError line naming it (``label``, default the path)."""
    try:
        return path.read_bytes()
    except OSError as e:
        raise read_error(label or str(path), e) from None


def read_error(name: str, e: OSError) -> CaecError:
    """The one line that reports ``e``, raised reading the input ``name``."""
    if isinstance(e, FileNotFoundError):
        return CaecError(f"{name}: no such file")
    if isinstance(e, IsADirectoryError):
        return CaecError(f"{name}: is a directory")
    return CaecError(f"{name}: {e.strerror or e}")
