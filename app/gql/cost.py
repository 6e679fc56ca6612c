"""Query cost: every field costs 1, and a field with a `first` or `last` argument multiplies the
cost of what it selects by that page size (a variable without a default counts as the largest page).
Documents over the limit are refused at validation; every response echoes the cost in
`extensions.cost`, as Saleor does. The estimate depends on the document only, so it is
cached with the other validation results."""

from __future__ import annotations

from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    VariableNode,
)
from strawberry.extensions import AddValidationRules, SchemaExtension


def estimate(document: DocumentNode, max_page: int) -> int:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    costs = [0]
    for op in document.definitions:
        if isinstance(op, OperationDefinitionNode):
            defaults: dict[str, int] = {}
            for var in op.variable_definitions or ():
                if isinstance(var.default_value, IntValueNode):
                    defaults[var.variable.name.value] = int(var.default_value.value)
            costs.append(_selection_cost(op.selection_set, fragments, defaults, max_page, set()))
    return max(costs)


def _page(field: FieldNode, defaults: dict[str, int], max_page: int) -> int:
    for arg in field.arguments or ():
        if arg.name.value in ("first", "last"):
            if isinstance(arg.value, IntValueNode):
                return max(1, int(arg.value.value))
            if isinstance(arg.value, VariableNode):
                return defaults.get(arg.value.name.value, max_page)
    return 1


def _selection_cost(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    defaults: dict[str, int],
    max_page: int,
    visiting: set[str],
) -> int:
    if selection_set is None:
        return 0
    total = 0
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            inner = _selection_cost(sel.selection_set, fragments, defaults, max_page, visiting)
            total += 1 + inner * _page(sel, defaults, max_page)
        elif isinstance(sel, InlineFragmentNode):
            total += _selection_cost(sel.selection_set, fragments, defaults, max_page, visiting)
        elif isinstance(sel, FragmentSpreadNode):
            name = sel.name.value
            if name in fragments and name not in visiting:  # cycles are a validation error
                total += _selection_cost(
                    fragments[name].selection_set,
                    fragments,
                    defaults,
                    max_page,
                    visiting | {name},
                )
    return total


def cost_extensions(max_cost: int, max_page: int) -> list[Any]:
    class CostRule(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            cost = estimate(context.document, max_page)
            if cost > max_cost:
                context.report_error(
                    GraphQLError(
                        f"query cost {cost} exceeds the maximum of {max_cost}",
                        extensions={
                            "code": "QUERY_TOO_COSTLY",
                            "cost": {"requestedQueryCost": cost, "maximumAvailable": max_cost},
                        },
                    )
                )

    echoed: dict[str, dict[str, Any]] = {}  # query text -> echo (bounded below)

    class CostEcho(SchemaExtension):
        def get_results(self) -> dict[str, Any]:
            ctx = self.execution_context
            if ctx.graphql_document is None or ctx.query is None:
                return {}
            # A subscription's every result echoes the same cost: compute it once per text.
            echo = echoed.get(ctx.query)
            if echo is None:
                if len(echoed) >= 512:
                    echoed.clear()
                echo = echoed[ctx.query] = {
                    "cost": {
                        "requestedQueryCost": estimate(ctx.graphql_document, max_page),
                        "maximumAvailable": max_cost,
                    }
                }
            return echo

    return [AddValidationRules([CostRule]), CostEcho]
