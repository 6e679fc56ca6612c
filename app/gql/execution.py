"""A shorter path through graphql-core for plain leaf fields.

A list of 50 tasks executes ~400 fields, and graphql-core's general path (a resolve info per
field, middleware lookup, awaitable checks, completion by type) costs more than the rest of
the request. A field that Strawberry resolves by plain attribute access (`_get_basic_result`:
no resolver, permission or extension), with no arguments, returning a scalar or an enum, is
read and coerced here directly. Anything else, including every null on a non-null field and
every value the type refuses, goes the general way (which raises the proper error). The
resolver is recognised by its name in Strawberry; should a release rename it, every field
simply takes the general path again (slower, never wrong)."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLEnumType, GraphQLNonNull, GraphQLObjectType, GraphQLScalarType, Undefined
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
