"""The rules of a selective restore's input: which keys, which policy, which renames.

``check_selection_input`` needs only the backup's product (it runs with ``check_request``,
before any archive is read); ``selection_for`` checks the keys against the backup's archive
and the destination and gives the ``Selection`` the restore runs with. Each error is
INVALID_INPUT with the field path of the offending key.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from recoverly.models import ConflictPolicy, ProductKey
from recoverly.products.selection import Selection, key_problem
from recoverly.services.validation import invalid

SELECTION_FIELD = ["input", "selection"]
RENAMES_FIELD = ["input", "keyRenames"]
POLICY_FIELD = ["input", "conflictPolicy"]
MAX_KEYS = 1000


@dataclass(frozen=True)
class SelectionRequest:
    """``StartRestoreInput``'s selection, policy and renames, as given."""

    project_keys: tuple[str, ...] | None = None
    space_keys: tuple[str, ...] | None = None
    given: bool = False  # a selection was given (maybe empty); else a full-site restore
    policy: ConflictPolicy = ConflictPolicy.SKIP
    renames: tuple[tuple[str, str], ...] = ()  # (from, to)


def _keys_field(product: str) -> str:
    return "projectKeys" if str(product) == ProductKey.JIRA.value else "spaceKeys"


def _keys(request: SelectionRequest, product: str) -> tuple[str, ...]:
    jira = str(product) == ProductKey.JIRA.value
    return (request.project_keys if jira else request.space_keys) or ()


def check_selection_input(request: SelectionRequest, *, product: str) -> None:
    """The rules that need no archive: keys of the backup's product, a non-empty selection,
    renames only with RENAME and only of selected keys onto valid, distinct keys."""
    if not request.given:
        if request.renames:
            raise invalid("keyRenames apply to a selection: give selection too", RENAMES_FIELD)
        if request.policy != ConflictPolicy.SKIP:
            raise invalid(
                "conflictPolicy applies to a selection: a full-site restore keeps the "
                "destination's rules",
                POLICY_FIELD,
            )
        return
    name = _keys_field(product)
    other = "spaceKeys" if name == "projectKeys" else "projectKeys"
    if (request.space_keys if other == "spaceKeys" else request.project_keys) is not None:
        what = "projects" if other == "projectKeys" else "spaces"
        raise invalid(
            f"a {product.title()} backup holds no {what}: select {name}", [*SELECTION_FIELD, other]
        )
    keys = _keys(request, product)
    if not keys:
        raise invalid(f"select at least one key in {name}", [*SELECTION_FIELD, name])
    if len(keys) > MAX_KEYS:
        raise invalid(f"at most {MAX_KEYS} keys per restore", [*SELECTION_FIELD, name])
    seen: set[str] = set()
    for index, key in enumerate(keys):
        if key in seen:
            raise invalid(f"{key!r} is selected twice", [*SELECTION_FIELD, name, str(index)])
        seen.add(key)
    _check_renames(request, product=product, selected=seen)


def _check_renames(request: SelectionRequest, *, product: str, selected: set[str]) -> None:
    if request.renames and request.policy != ConflictPolicy.RENAME:
        raise invalid("keyRenames need conflictPolicy RENAME", RENAMES_FIELD)
    renamed = {source for source, _ in request.renames}
    sources: set[str] = set()
    targets: set[str] = set()
    for index, (source, target) in enumerate(request.renames):
        here = [*RENAMES_FIELD, str(index)]
        if source not in selected:
            raise invalid(
                f"{source!r} is not selected: only selected keys are renamed", [*here, "from"]
            )
        if source in sources:
            raise invalid(f"{source!r} is renamed twice", [*here, "from"])
        sources.add(source)
        if (problem := key_problem(product, target)) is not None:
            raise invalid(f"{target!r}: {problem}", [*here, "to"])
        # Onto another rename's target, or a selected key that keeps its name: two items.
        if target in targets or (target in selected and target not in renamed):
            raise invalid(f"{target!r} is the key of another restored item", [*here, "to"])
        targets.add(target)


def selection_for(
    request: SelectionRequest,
    *,
    product: str,
    in_archive: Collection[str],
    in_destination: Collection[str],
) -> Selection | None:
    """The restore's selection, its keys checked against the keys of the backup's archive
    and of the destination; None for a full-site restore."""
    if not request.given:
        return None
    name = _keys_field(product)
    keys = _keys(request, product)
    for index, key in enumerate(keys):
        if key not in in_archive:
            raise invalid(
                f"the backup holds no {'project' if name == 'projectKeys' else 'space'} {key!r}",
                [*SELECTION_FIELD, name, str(index)],
            )
    renames = dict(request.renames)
    for index, (_, target) in enumerate(request.renames):
        if target in in_destination:
            raise invalid(
                f"{target!r} already exists in the destination: choose another key",
                [*RENAMES_FIELD, str(index), "to"],
            )
    if request.policy == ConflictPolicy.RENAME:
        for index, key in enumerate(keys):
            if key in in_destination and key not in renames:
                raise invalid(
                    f"{key!r} exists in the destination: give it a new key in keyRenames",
                    [*SELECTION_FIELD, name, str(index)],
                )
    return Selection(keys=frozenset(keys), policy=request.policy, renames=renames)
