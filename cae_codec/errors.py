"""The error types a caller of caec can expect.

Every failure the CLI reports as one line derives from :class:`CaecError`, so the CLI
needs exactly one ``except`` clause to turn library failures into clean exits.
"""

from __future__ import annotations


class CaecError(Exception):
    """Base class of every error caec reports to the user as one line."""


class FormatError(CaecError):
    """A .cae file is malformed: bad magic, unknown version, truncated, CRC mismatch..."""


class ModelError(CaecError):
    """Weights are missing, corrupt, or not the ones a file was encoded with."""


class ImageError(CaecError):
    """An input image cannot be read or an output image cannot be written."""


class HeaderFieldError(FormatError, ValueError):
    """A header field that does not fit the format when writing (a name too long, not ASCII).

    A ValueError, being the caller's mistake, and a CaecError, so that `caec encode` with a
    weights file named that way still reports it on one line.
    """
