"""Every exception the project defines derives from ``RecoverlyError``, and no two project
classes share a name unless one is the GraphQL type built from the other's table row."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections import defaultdict

import recoverly
from recoverly.errors import RecoverlyError


def project_classes() -> list[type]:
    found: dict[str, type] = {}
    for module_info in pkgutil.walk_packages(recoverly.__path__, "recoverly."):
        if module_info.name.startswith("recoverly.models.migrations"):
            continue
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module_info.name:
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return list(found.values())


def test_every_project_exception_derives_from_the_root() -> None:
    exceptions = [c for c in project_classes() if issubclass(c, BaseException)]
    assert len(exceptions) > 10
    strays = [
        f"{c.__module__}.{c.__qualname__}" for c in exceptions if not issubclass(c, RecoverlyError)
    ]
    assert strays == []


def test_class_names_are_unique_but_for_a_row_and_its_graphql_type() -> None:
    modules_by_name: dict[str, list[str]] = defaultdict(list)
    for cls in project_classes():
        modules_by_name[cls.__qualname__].append(cls.__module__)
    shared = {name: sorted(m) for name, m in modules_by_name.items() if len(m) > 1}
    row_and_type = [["models", "schema"]]
    assert {
        n: m for n, m in shared.items() if [x.split(".")[1] for x in m] not in row_and_type
    } == {}
