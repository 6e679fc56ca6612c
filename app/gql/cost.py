"""Query cost, read from the schema: a field costs its declared weight (`@cost(weight)`, 1 when
none is declared), and a field with a list-size argument (`first`, `last` or `limit`)
multiplies the cost of what it selects by the size it may answer. A size written in the
document counts as written; a variable (its value comes only at execution, and may be anything
the field accepts, whatever the variable's default) counts as the largest the field accepts;
a size left out counts as the field's default (a connection's default page, a `limit`'s
default, or for a list whose size may be left out the largest it can be).

Some fields are also capped per operation: a field's metadata (`per_operation`) may name the
setting that bounds how many times one operation may ask for it (`Detection.thumbnail`: a file
read and an image decode each), counted as the cost is (aliases times the page sizes around).

Documents over the cost or a cap are refused at validation, before anything runs; every
response echoes the cost in `extensions.cost`, as Saleor does. The estimate depends on the
document (and the settings) only, so it is cached with the other validation results."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import strawberry
from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLArgument,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    VariableNode,
    get_named_type,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema_directive import Location

from app.config import Settings
from app.gql.pagination import DEFAULT_PAGE
from app.kernel.bounds import DELIVERIES_LIMIT_MAX, HISTORY_LIMIT_MAX, LIMIT_MAX
from app.services.monitoring.logs import MAX_LIMIT as LOG_SEARCH_MAX
from app.services.schedules.queries import MAX_RUNS as SCHEDULE_RUNS_MAX

# The arguments that size a list; `start`, `offset` and `after` only move through it.
SIZE_ARGUMENTS = ("first", "last", "limit")

# The most items a non-connection list answers, for the ones a variable or a left-out size
# could otherwise under-price: a number (what the resolver accepts at most) or the name of the
# setting that bounds it. Connections' `first`/`last` accept at most `OPSGRAPH_PAGE_SIZE_MAX`
# (as does a list not named here); tests/test_query_cost.py checks every sized list that is not
# a connection is named.
LIST_BOUNDS: dict[str, int | str] = {
    "Query.llmTasks": "page_size_max",
    "Query.logs": LOG_SEARCH_MAX,
    "Query.dlqJobs": LIMIT_MAX,
    "Query.promptHistory": HISTORY_LIMIT_MAX,
    "Query.promptHistories": HISTORY_LIMIT_MAX,
    "Job.logs": LIMIT_MAX,
    "WebhookSubscription.deliveries": DELIVERIES_LIMIT_MAX,
    # without `first`, an event's (a batch's) every detection: a batch closes at this many
    "SecurityEvent.detections": "batch_max_size",
    "Batch.detections": "batch_max_size",
    "Schedule.runs": SCHEDULE_RUNS_MAX,
}


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="cost",
    description="What one resolution of this field costs in the query cost (`extensions.cost`);"
    " a field without it costs 1.",
)
class Cost:
    weight: int


PER_OPERATION = "opsgraph.per_operation"  # the key `per_operation` puts in a field's metadata


def per_operation(setting: str) -> dict[str, str]:
    """A field's metadata capping how many times one operation may ask for it: at most the
    value of the Settings field `setting` (the server's, so not part of the SDL)."""
    return {PER_OPERATION: setting}


@dataclass(frozen=True)
class Declared:
    """What the schema declares: weights and caps by field coordinate (`Type.field`)."""

    weights: dict[str, int]
    caps: dict[str, str]  # coordinate -> Settings field

    def settings(self) -> tuple[str, ...]:
        named = {*self.caps.values(), *(b for b in LIST_BOUNDS.values() if isinstance(b, str))}
        return tuple(sorted(named))


@lru_cache(maxsize=8)
def declared(schema: GraphQLSchema) -> Declared:
    weights: dict[str, int] = {}
    caps: dict[str, str] = {}
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            continue
        for name, gql_field in type_.fields.items():
            definition = (gql_field.extensions or {}).get("strawberry-definition")
            coordinate = f"{type_.name}.{name}"
            for directive in getattr(definition, "directives", None) or ():
                if isinstance(directive, Cost):
                    weights[coordinate] = directive.weight
            setting = (getattr(definition, "metadata", None) or {}).get(PER_OPERATION)
            if setting is not None:
                caps[coordinate] = setting
    return Declared(weights=weights, caps=caps)


@dataclass(frozen=True)
class Limits:
    max_cost: int
    max_page: int
    settings: tuple[tuple[str, int], ...] = ()  # the values of the settings Declared names

    def setting(self, name: str) -> int:
        for key, value in self.settings:
            if key == name:
                return value
        return int(Settings.model_fields[name].default)


def limits_of(
    settings: Settings | None, max_cost: int, max_page: int, schema: GraphQLSchema
) -> Limits:
    """The limits an operation is held to (defaults for a context without settings)."""
    values = tuple(
        (n, int(Settings.model_fields[n].default if settings is None else getattr(settings, n)))
        for n in declared(schema).settings()
    )
    return Limits(max_cost, max_page, values)


@dataclass
class Estimate:
    cost: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # capped coordinate -> resolutions
    nodes: dict[str, FieldNode] = field(default_factory=dict)  # where each is first asked


def estimate(schema: GraphQLSchema, document: DocumentNode, limits: Limits) -> Estimate:
    """The most any operation of the document costs, and the most times it asks for each capped
    field."""
    walk = _Walk(schema, document, limits)
    best = Estimate()
    for op in document.definitions:
        if isinstance(op, OperationDefinitionNode):
            root = schema.get_root_type(op.operation)
            cost, counts = walk.selection(op.selection_set, root, frozenset())
            best.cost = max(best.cost, cost)
            for name, n in counts.items():
                best.counts[name] = max(best.counts.get(name, 0), n)
    best.nodes = walk.nodes
    return best


class _Walk:
    def __init__(self, schema: GraphQLSchema, document: DocumentNode, limits: Limits) -> None:
        self.schema = schema
        self.limits = limits
        self.declared = declared(schema)
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.nodes: dict[str, FieldNode] = {}

    def selection(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        visiting: frozenset[str],
    ) -> tuple[int, dict[str, int]]:
        total = 0
        counts: dict[str, int] = {}
        if selection_set is None:
            return total, counts

        def add(cost: int, inner: dict[str, int], times: int) -> None:
            nonlocal total
            total += cost
            for name, n in inner.items():
                counts[name] = counts.get(name, 0) + n * times

        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                name = sel.name.value
                definition: GraphQLField | None = None
                if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
                    definition = parent.fields.get(name)
                coordinate = f"{parent.name if parent else '?'}.{name}"
                inner_type = get_named_type(definition.type) if definition else None
                cost, inner = self.selection(sel.selection_set, inner_type, visiting)
                size = self.size(sel, definition, coordinate, inner_type)
                weight = self.declared.weights.get(coordinate, 1)
                add(weight + cost * size, inner, size)
                if coordinate in self.declared.caps:
                    counts[coordinate] = counts.get(coordinate, 0) + 1
                    self.nodes.setdefault(coordinate, sel)
            elif isinstance(sel, InlineFragmentNode):
                on = sel.type_condition
                scope = self.schema.get_type(on.name.value) if on else parent
                add(*self.selection(sel.selection_set, scope, visiting), 1)
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                fragment = self.fragments.get(name)
                if fragment is not None and name not in visiting:  # cycles: a validation error
                    scope = self.schema.get_type(fragment.type_condition.name.value)
                    add(*self.selection(fragment.selection_set, scope, visiting | {name}), 1)
        return total, counts

    def size(
        self,
        node: FieldNode,
        definition: GraphQLField | None,
        coordinate: str,
        inner_type: GraphQLNamedType | None,
    ) -> int:
        """How many items the field may answer, as far as the document says."""
        if definition is None:  # not in the schema: a validation error of its own
            return 1
        sizing = {n: a for n, a in definition.args.items() if n in SIZE_ARGUMENTS}
        if not sizing:
            return 1
        given: list[int] = []
        for arg in node.arguments or ():
            if arg.name.value not in sizing:
                continue
            if isinstance(arg.value, IntValueNode):
                given.append(max(1, int(arg.value.value)))
            elif isinstance(arg.value, VariableNode):
                given.append(self.largest(coordinate))
            # a literal null is as if left out
        if given:
            return max(given)
        defaults = [_int_default(a) for a in sizing.values()]
        if any(d is not None for d in defaults):
            return max(d for d in defaults if d is not None)
        if _is_connection(inner_type):
            return DEFAULT_PAGE
        return self.largest(coordinate)

    def largest(self, coordinate: str) -> int:
        bound = LIST_BOUNDS.get(coordinate)
        if bound is None:
            return self.limits.max_page
        return bound if isinstance(bound, int) else self.limits.setting(bound)


def _int_default(arg: GraphQLArgument) -> int | None:
    value = arg.default_value
    return max(1, value) if isinstance(value, int) and not isinstance(value, bool) else None


def _is_connection(type_: GraphQLNamedType | None) -> bool:
    return isinstance(type_, GraphQLObjectType) and {"edges", "pageInfo"} <= type_.fields.keys()


def _settings_of(context: Any) -> Settings | None:
    settings = getattr(getattr(context, "state", None), "settings", None)
    return settings if isinstance(settings, Settings) else None


@lru_cache(maxsize=32)
def _rule(limits: Limits) -> type[ASTValidationRule]:
    """One rule class per set of limits: the validation cache keys on the rules' identity."""

    class CostRule(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            found = estimate(context.schema, context.document, limits)
            for coordinate, setting in declared(context.schema).caps.items():
                asked, cap = found.counts.get(coordinate, 0), limits.setting(setting)
                if asked > cap:
                    context.report_error(
                        GraphQLError(
                            f"{coordinate} may be asked for at most {cap} times in one operation"
                            f" (OPSGRAPH_{setting.upper()}); this document asks for it up to"
                            f" {asked} times",
                            found.nodes.get(coordinate),
                            extensions={
                                "code": "QUERY_TOO_COSTLY",
                                "field": coordinate,
                                "requested": asked,
                                "maximumAvailable": cap,
                            },
                        )
                    )
            if found.cost > limits.max_cost:
                context.report_error(
                    GraphQLError(
                        f"query cost {found.cost} exceeds the maximum of {limits.max_cost}",
                        extensions={
                            "code": "QUERY_TOO_COSTLY",
                            "cost": {
                                "requestedQueryCost": found.cost,
                                "maximumAvailable": limits.max_cost,
                            },
                        },
                    )
                )

    return CostRule


def cost_extensions(max_cost: int, max_page: int) -> list[Any]:
    echoed: dict[tuple[Limits, str], dict[str, Any]] = {}  # (limits, text) -> echo (bounded)

    class CostLimits(SchemaExtension):
        limits: Limits | None = None

        def on_operation(self) -> Any:
            # The caps are settings, which reach an operation through its context (the API
            # process's state); a context without them is held to the defaults.
            ctx = self.execution_context
            self.limits = limits_of(
                _settings_of(ctx.context), max_cost, max_page, ctx.schema._schema
            )
            ctx.validation_rules = (*ctx.validation_rules, _rule(self.limits))
            yield

        def get_results(self) -> dict[str, Any]:
            ctx = self.execution_context
            if ctx.graphql_document is None or ctx.query is None or self.limits is None:
                return {}
            # A subscription's every result echoes the same cost: compute it once per text.
            key = (self.limits, ctx.query)
            echo = echoed.get(key)
            if echo is None:
                if len(echoed) >= 512:
                    echoed.clear()
                found = estimate(ctx.schema._schema, ctx.graphql_document, self.limits)
                echo = echoed[key] = {
                    "cost": {"requestedQueryCost": found.cost, "maximumAvailable": max_cost}
                }
            return echo

    return [CostLimits]
