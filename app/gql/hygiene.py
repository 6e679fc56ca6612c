"""GraphQL's side of the input-hygiene rule (app/edge/hygiene.py): text PostgreSQL cannot store and
values nested deeper than MAX_JSON_DEPTH are refused as BAD_USER_INPUT naming the argument or
variable, whether they came as a literal in the document or as a variable; a value its column
cannot hold (app/platform/storable.py's check before the flush) that a resolver did not answer
as a typed error is BAD_USER_INPUT naming the field; and user errors are logged as such (one
line, no traceback)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import (
    ArgumentNode,
    ASTValidationRule,
    GraphQLError,
    ListValueNode,
    ObjectFieldNode,
    ObjectValueNode,
    StringValueNode,
)
from strawberry.extensions import SchemaExtension

from app.edge.hygiene import MAX_JSON_DEPTH, TOO_DEEP, json_problems, text_problem
from app.platform.storable import Unstorable

log = logging.getLogger("opsgraph.graphql")


def _bad_input(message: str, field: str, **kwargs: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT", "field": field}, **kwargs)


def _field_of(ancestors: Any, parent: Any) -> str:
    names = [
        a.name.value for a in [*ancestors, parent] if isinstance(a, ArgumentNode | ObjectFieldNode)
    ]
    return ".".join(names) or "argument"


class TextLiteralRule(ASTValidationRule):
    """String literals in the document (arguments and input object fields), and list and
    object literals nested deeper than MAX_JSON_DEPTH."""

    def _nesting(self, node: Any, parent: Any, ancestors: Any) -> Any:
        depth = sum(isinstance(a, ListValueNode | ObjectValueNode) for a in [*ancestors, parent])
        if depth >= MAX_JSON_DEPTH:
            field = _field_of(ancestors, parent)
            self.report_error(_bad_input(f"{field} {TOO_DEEP}", field, nodes=[node]))
            return self.SKIP
        return None

    def enter_list_value(
        self, node: ListValueNode, _key: Any, parent: Any, _path: Any, ancestors: Any
    ) -> Any:
        return self._nesting(node, parent, ancestors)

    def enter_object_value(
        self, node: ObjectValueNode, _key: Any, parent: Any, _path: Any, ancestors: Any
    ) -> Any:
        return self._nesting(node, parent, ancestors)

    def enter_string_value(
        self, node: StringValueNode, _key: Any, _parent: Any, _path: Any, ancestors: Any
    ) -> None:
        problem = text_problem(node.value)
        if problem is None:
            return
        field = _field_of(ancestors, _parent)
        self.report_error(_bad_input(f"{field} {problem}", field, nodes=[node]))


def variable_problem(variables: dict[str, Any]) -> GraphQLError | None:
    for path, problem in json_problems(variables):
        field = "$" + ".".join(str(p) for p in path)
        return _bad_input(f"{field} {problem}", field)
    return None


class RefuseUnstorableVariables(SchemaExtension):
    """Variable values of queries and mutations (raised before execution: strawberry answers
    it as an error); subscriptions are checked before they start (app/gql/fanout.py)."""

    def on_operation(self) -> Iterator[None]:
        error = variable_problem(self.execution_context.variables or {})
        if error is not None:
            raise error
        yield


def unstorable_error(error: GraphQLError) -> GraphQLError | None:
    """A resolver's Unstorable as BAD_USER_INPUT naming the field (None: another error)."""
    original = error.original_error
    if not isinstance(original, Unstorable):
        return None
    return GraphQLError(
        original.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": "BAD_USER_INPUT", "field": original.field},
    )


def log_errors(errors: list[GraphQLError]) -> None:
    """A client's mistake is not a server error: one INFO line for it; a traceback only for
    errors that came from a bug or an outage."""
    for error in errors:
        original = error.original_error
        if original is None or isinstance(original, GraphQLError):
            log.info("graphql user error: %s", error.message)
        else:
            log.error("graphql error: %s", error.message, exc_info=original)
