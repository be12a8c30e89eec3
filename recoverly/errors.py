"""The root of Recoverly's own exceptions, importable from every layer.

Each exception the project raises derives from ``RecoverlyError`` (beside a standard base
where callers rely on one, such as ``OSError`` or ``GraphQLError``), so
``except RecoverlyError`` tells the project's failures from a library's or a bug's.
"""

from __future__ import annotations


class RecoverlyError(Exception):
    """A failure Recoverly raises on purpose; subclasses say which."""
