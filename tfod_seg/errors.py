"""User-facing errors.

Every mistake a user can make (bad file, bad field, bad flag) raises a subclass of
`UserError` whose message names the file, the field or line, the bad value and what was
expected. The CLI prints the message in one or two lines, without a traceback, and exits
with status 2. Bugs in tfod-seg itself are any other exception and keep their traceback.
"""

from __future__ import annotations

import os


class UserError(Exception):
    """A mistake in the user's input: message only, no traceback."""

    exit_code = 2


class AnnotationError(UserError):
    """An annotation file is malformed or inconsistent with its image."""

    def __init__(self, path: str | os.PathLike | None, message: str):
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class ConfigError(UserError):
    """A config file, template, or override is wrong."""


class LabelMapError(UserError):
    """A label map file is malformed (duplicate or invalid ids, names)."""


class StrictModeError(UserError):
    """`--strict` was given and something was skipped."""


class EngineError(UserError):
    """Training, evaluation or export failed for a reason the user can act on."""
