"""Warnings that point at the user's line, however many of our layers sit in between.

Example:
    >>> import warnings
    >>> def check(value):
    ...     warnings.warn("odd value", UserWarning, stacklevel=caller_stacklevel())
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType

__all__ = ["caller_stacklevel"]

_SKIPPED_DIRS = tuple(
    str(Path(module.__file__).resolve().parent)
    for module in (__import__("canfar_widgets"), __import__("pydantic"))
    if module.__file__
)


def caller_stacklevel() -> int:
    """The ``warnings.warn`` stacklevel of the first frame outside canfar_widgets and pydantic.

    Our warnings are about the caller's arguments, so they should name the caller's line,
    however many of our layers (Session -> AsyncSession -> model validation) sit in between.
    Call it directly from the function that calls ``warnings.warn``.
    """
    frame: FrameType | None = sys._getframe(2)  # skip this helper and the function that warns
    level = 2
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(
        _SKIPPED_DIRS
    ):
        frame = frame.f_back
        level += 1
    return level
