"""GraphQL's side of the input-hygiene rule (app/hygiene.py): text PostgreSQL cannot store is
refused as BAD_USER_INPUT naming the argument or variable, whether it came as a literal in the
document or as a variable; and user errors are logged as such (one line, no traceback)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import (
    ArgumentNode,
    ASTValidationRule,
    GraphQLError,
    ObjectFieldNode,
    StringValueNode,
)
from strawberry.extensions import SchemaExtension

from app.hygiene import json_problems, text_problem

log = logging.getLogger("opsgraph.graphql")


def _bad_input(message: str, field: str, **kwargs: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT", "field": field}, **kwargs)


class TextLiteralRule(ASTValidationRule):
    """String literals in the document (arguments and input object fields)."""

    def enter_string_value(
        self, node: StringValueNode, _key: Any, _parent: Any, _path: Any, ancestors: Any
    ) -> None:
        problem = text_problem(node.value)
        if problem is None:
            return
        names = [
            a.name.value
            for a in [*ancestors, _parent]
            if isinstance(a, ArgumentNode | ObjectFieldNode)
        ]
        field = ".".join(names) or "argument"
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


def log_errors(errors: list[GraphQLError]) -> None:
    """A client's mistake is not a server error: one INFO line for it; a traceback only for
    errors that came from a bug or an outage."""
    for error in errors:
        original = error.original_error
        if original is None or isinstance(original, GraphQLError):
            log.info("graphql user error: %s", error.message)
        else:
            log.error("graphql error: %s", error.message, exc_info=original)
