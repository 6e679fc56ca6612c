"""A shorter path through graphql-core for plain fields, and for whole lists of them.

A list of 50 tasks executes ~400 fields, and graphql-core's general path (a resolve info per
field, middleware lookup, awaitable checks, completion by type) costs more than the rest of
the request. A field that Strawberry resolves by plain attribute access (`_get_basic_result`:
no resolver, permission or extension), with no arguments, returning a scalar or an enum, is
read and coerced here directly. Anything else, including every null on a non-null field and
every value the type refuses, goes the general way (which raises the proper error). The
resolver is recognised by its name in Strawberry; should a release rename it, every field
simply takes the general path again (slower, never wrong).

A list whose items select only such fields, directly or through objects reached by plain
attributes (a connection's `edges { node { id status ... } }`), is completed by one plan
made once per list: no per-field execution at all. The plan gives up (Undefined) at the first
value it cannot vouch for (a null where the type forbids it, a value the type refuses, an
awaitable, an item of another type) and the whole list then goes the general way, which
reports it properly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

BASIC = "_get_basic_result"  # the resolver Strawberry builds for a plain attribute


def _probe(*_: Any) -> None:
    return None


class LeanExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        # with field middleware (an extension's `resolve` hook) every field must go through it
        self._plain = manager is None or manager.get_field_resolver(_probe) is _probe

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        if self._plain and len(field_details_list) == 1:
            node = field_details_list[0].node
            field_def = parent_type.fields.get(node.name.value)
            resolve = field_def.resolve if field_def is not None else None
            if resolve is not None and resolve.__name__ == BASIC and not node.arguments:
                value = self._leaf(field_def.type, resolve, source)  # type: ignore[union-attr]
                if value is not Undefined:
                    return value
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def _leaf(self, field_type: Any, resolve: Any, source: Any) -> Any:
        nullable = not isinstance(field_type, GraphQLNonNull)
        leaf = field_type if nullable else field_type.of_type
        if not isinstance(leaf, GraphQLScalarType | GraphQLEnumType):
            return Undefined
        try:
            value = resolve(source, None)
            if value is None:
                return None if nullable else Undefined
            if self.is_awaitable(value):
                return Undefined
            coerced = leaf.coerce_output_value(value)
        except Exception:  # the general path reports it, with its location
            return Undefined
        return Undefined if coerced is None else coerced

    def complete_list_value(
        self,
        return_type: Any,
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        if self._plain and isinstance(result, list | tuple):
            plan = self._list_plan(return_type, field_details_list)
            if plan is not None:
                completed = plan.run(result, info)
                if completed is not Undefined:
                    return completed
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _list_plan(self, list_type: Any, field_details_list: Any) -> _Plan | None:
        cache: dict[tuple[int, int], tuple[Any, _Plan | None]]
        cache = self.__dict__.setdefault("_list_plans", {})
        key = (id(list_type), id(field_details_list))
        hit = cache.get(key)
        if hit is not None:
            return hit[1]
        plan = self._plan(list_type, field_details_list, depth=0)
        # the list is kept with its plan so that its id is not reused during execution
        cache[key] = (field_details_list, plan)
        return plan

    def _plan(self, field_type: Any, field_details_list: Any, depth: int) -> _Plan | None:
        nullable = not isinstance(field_type, GraphQLNonNull)
        inner = field_type if nullable else field_type.of_type
        if isinstance(inner, GraphQLScalarType | GraphQLEnumType):
            return _Leaf(nullable, inner)
        if depth > 4:
            return None
        if isinstance(inner, GraphQLList):
            item = self._plan(inner.of_type, field_details_list, depth + 1)
            return None if item is None else _List(nullable, item)
        if not isinstance(inner, GraphQLObjectType):
            return None  # interfaces and unions resolve their type: the general way
        collected = self.collect_subfields(inner, field_details_list)
        if collected.new_defer_usages or collected.forbidden_directive_instances:
            return None
        fields: list[tuple[str, Any, _Plan]] = []
        for response_key, details in collected.grouped_field_set.items():
            if len(details) != 1 or details[0].defer_usage is not None:
                return None
            node = details[0].node
            name = node.name.value
            if name == "__typename":
                fields.append((response_key, None, _Typename(inner.name)))
                continue
            field_def = inner.fields.get(name)
            resolve = field_def.resolve if field_def is not None else None
            if resolve is None or resolve.__name__ != BASIC or node.arguments or node.directives:
                return None
            sub = self._plan(field_def.type, details, depth + 1)  # type: ignore[union-attr]
            if sub is None:
                return None
            fields.append((response_key, resolve, sub))
        return _Object(nullable, inner, fields)


class _Plan:
    def run(self, value: Any, info: Any) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class _Leaf(_Plan):
    nullable: bool
    type: Any

    def run(self, value: Any, info: Any) -> Any:
        if value is None:
            return None if self.nullable else Undefined
        try:
            coerced = self.type.coerce_output_value(value)
        except Exception:
            return Undefined
        return Undefined if coerced is None else coerced


@dataclass(frozen=True)
class _Typename(_Plan):
    name: str

    def run(self, value: Any, info: Any) -> Any:
        return self.name


@dataclass(frozen=True)
class _List(_Plan):
    nullable: bool
    item: _Plan

    def run(self, value: Any, info: Any) -> Any:
        if value is None:
            return None if self.nullable else Undefined
        if not isinstance(value, list | tuple):
            return Undefined
        out = []
        for item in value:
            done = self.item.run(item, info)
            if done is Undefined:
                return Undefined
            out.append(done)
        return out


@dataclass(frozen=True)
class _Object(_Plan):
    nullable: bool
    type: GraphQLObjectType
    fields: list[tuple[str, Any, _Plan]]

    def run(self, value: Any, info: Any) -> Any:
        if value is None:
            return None if self.nullable else Undefined
        is_type_of = self.type.is_type_of
        if is_type_of is not None and is_type_of(value, info) is not True:
            return Undefined  # not this type, or an awaitable answer: the general way
        out = {}
        for key, resolve, plan in self.fields:
            try:
                raw = None if resolve is None else resolve(value, None)
            except Exception:
                return Undefined
            if hasattr(raw, "__await__"):
                return Undefined
            done = plan.run(raw, info)
            if done is Undefined:
                return Undefined
            out[key] = done
        return out
