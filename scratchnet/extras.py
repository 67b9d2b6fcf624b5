"""Optional integrations (MLflow, Optuna, ...) live behind extras: each is imported only by
the code that needs it, a command checks the ones it will need before it starts (so a
batch never stops half-way for a missing library), and a missing one is one line naming
the exact install command."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType

from .errors import ConfigError

#: the distribution's name (pyproject's ``[project] name``) when its metadata cannot be read
DISTRIBUTION = "scratchnet-dlfs"


@dataclass(frozen=True)
class Extra:
    """One optional integration: the module imported, what needs it (the start of the
    message), the library's name as people know it, and the pyproject extra that installs
    it (by default, its own name in :data:`EXTRAS`)."""

    module: str
    what: str
    library: str = ""
    extra: str = ""


#: what a command may need -> the module and the extra that installs it
EXTRAS = {
    "plot": Extra("matplotlib", "plotting"),
    "mlflow": Extra("mlflow", "MLflow tracking"),
    "tune": Extra("optuna", "scratchnet tune"),
    "tune_cluster": Extra("grpc", "scratchnet tune --executor dask", extra="tune"),
    "onnx": Extra("onnx", "ONNX export"),
    "dask": Extra("distributed", "the dask executor", "dask.distributed"),
    "images": Extra("PIL", "reading images", "Pillow"),
}


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


def _missing(name: str) -> ConfigError:
    e = EXTRAS[name]
    return ConfigError(f"{e.what} needs {e.library or e.module}: {install_hint(e.extra or name)}")


def require(extra: str) -> ModuleType:
    """Import the module of ``extra`` (a key of :data:`EXTRAS`) or raise a one-line
    :class:`ConfigError`: ``scratchnet tune needs optuna: pip install
    'scratchnet-dlfs[tune]'``."""
    try:
        return importlib.import_module(EXTRAS[extra].module)
    except ImportError:
        raise _missing(extra) from None


def check(*extras: str) -> None:
    """Raise :func:`require`'s error for the first of ``extras`` that is not installed,
    without importing any (finding a module is quick; importing matplotlib is not)."""
    for extra in extras:
        try:
            found = importlib.util.find_spec(EXTRAS[extra].module) is not None
        except (ImportError, ValueError):  # a module set to None, a broken parent
            found = False
        if not found:
            raise _missing(extra)
