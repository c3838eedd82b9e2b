"""Every package's and module's ``__all__`` names something that exists."""

from __future__ import annotations

import importlib
import pkgutil
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

PACKAGES = ("amber_relay", "broadcaster", "workers", "clients")
# Modules the design names that may not have been written yet (pyproject's console script).
EXPECTED = ("amber_relay.cli",)


def _module_names() -> list[str]:
    names = set(PACKAGES) | set(EXPECTED)
    for pkg in PACKAGES:
        module = importlib.import_module(pkg)
        for info in pkgutil.iter_modules(module.__path__):
            names.add(f"{pkg}.{info.name}")
    return sorted(names)


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:  # the module itself is not there yet, not one of its imports
            pytest.skip(f"{name} does not exist yet")
        raise


@pytest.mark.parametrize("name", _module_names())
def test_exports_all_names_exist(name: str) -> None:
    """Every name in a module's __all__ is a str, listed once, and an attribute of the module."""
    module = _import(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        is_package = hasattr(module, "__path__")
        is_private = name.rsplit(".", 1)[-1].startswith("_")
        # public amber_relay modules declare their API; packages and private modules may not
        assert is_package or is_private or not name.startswith("amber_relay."), (
            f"{name} has no __all__"
        )
        return
    assert isinstance(exported, list | tuple), f"{name}.__all__ is {type(exported).__name__}"
    assert all(isinstance(n, str) for n in exported), name
    duplicates = sorted({n for n in exported if list(exported).count(n) > 1})
    assert not duplicates, f"{name}.__all__ lists {duplicates} twice"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names {missing}, which {name} does not define"


def test_exports_package_version_matches_pyproject() -> None:
    """amber_relay.__version__ is the version pyproject.toml gives the distribution."""
    import amber_relay

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    assert amber_relay.__version__ == project["version"]
