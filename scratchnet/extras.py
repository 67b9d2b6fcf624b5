"""Optional integrations (MLflow, Optuna, ...) live behind extras: each is imported only by
the code that needs it, and a missing one is one line naming the exact install command."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import ConfigError

#: the distribution's name (pyproject's ``[project] name``) when its metadata cannot be read
DISTRIBUTION = "scratchnet-dlfs"


def distribution_name() -> str:
    """The name pip knows this package by, read from the installed metadata."""
    try:
        from importlib.metadata import packages_distributions

        names = packages_distributions().get(__name__.split(".")[0])
    except Exception:  # broken or unusual metadata: the constant is right for a checkout
        names = None
    return names[0] if names else DISTRIBUTION


def install_hint(extra: str) -> str:
    """``pip install 'scratchnet-dlfs[mlflow]'``, with the distribution's real name (the
    import package and the command are ``scratchnet``; the name ``scratchnet`` on the
    package index belongs to an unrelated project)."""
    return f"pip install '{distribution_name()}[{extra}]'"


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` (e.g. ``"optuna"``) or raise a one-line :class:`ConfigError`:
    ``<what> needs optuna: pip install 'scratchnet-dlfs[tune]'``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"{what} needs {module.split('.')[0]}: {install_hint(extra)}") from None
