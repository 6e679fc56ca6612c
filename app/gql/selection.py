"""What a query selects on a connection's nodes, so a list can load only the columns its
selection reads (fragments and inline fragments flattened; aliases do not matter)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from app.gql.context import Info


def _flatten(selections: Iterable[Selection]) -> list[SelectedField]:
    out: list[SelectedField] = []
    for s in selections:
        if isinstance(s, SelectedField):
            out.append(s)
        elif isinstance(s, FragmentSpread | InlineFragment):
            out.extend(_flatten(s.selections))
    return out


def node_fields(info: Info) -> set[str]:
    """Field names selected under `edges { node { ... } }` of the field being resolved."""
    names: set[str] = set()
    for field in _flatten(info.selected_fields):
        for edges in _flatten(field.selections):
            if edges.name != "edges":
                continue
            for node in _flatten(edges.selections):
                if node.name == "node":
                    names.update(f.name for f in _flatten(node.selections))
    return names


def columns_for(
    names: Iterable[str], columns: Mapping[str, tuple[str, ...]], always: tuple[str, ...]
) -> tuple[str, ...] | None:
    """The row attributes the selected fields read; None (whole rows) if one is unknown."""
    wanted = dict.fromkeys(always)
    for name in names:
        needed = columns.get(name)
        if needed is None:
            return None
        wanted.update(dict.fromkeys(needed))
    return tuple(wanted)
