"""Errors the harness raises on purpose, and the exit codes the CLI maps them to.

`ConfigError` (exit 2) is bad input: a study file, a key, an argument. `HarnessError` (exit 1) is
a runtime failure the user can act on (missing data offline, unreachable storage). Everything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class HarnessError(Exception):
    """A runtime failure with a message meant for the user (exit code 1)."""

    exit_code = 1


class ConfigError(HarnessError):
    """Bad input: a study file, key, value or CLI argument (exit code 2)."""

    exit_code = 2


class Diverged(Exception):
    """Training produced a non-finite value; the trial ends as *diverged* with this reason."""
