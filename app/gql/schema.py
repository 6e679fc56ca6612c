"""The schema: root types assembled from the domain modules, with limits and caches."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from app.config import Settings
from app.gql.ai_audit import AuditMutations, AuditQueries, PromptMutations, PromptQueries
from app.gql.ai_monitoring import (
    AgentMutations,
    AgentQueries,
    AlertMutations,
    AlertQueries,
    LogMutations,
    LogSubscription,
    MonitoringSubscription,
    ObserveQueries,
    WebhookMutations,
    WebhookQueries,
)
from app.gql.cost import cost_extensions
from app.gql.execution import LeanExecutionContext
from app.gql.fanout import SharingSchema
from app.gql.hygiene import (
    RefuseUnstorableVariables,
    TextLiteralRule,
    log_errors,
    unstorable_error,
)
from app.gql.jobs import JobMutations, JobQueries, JobSubscription
from app.gql.llm import LlmMutations, LlmQueries, LlmSubscription
from app.gql.monitoring import MonitoringQueries, WorkerSubscription
from app.gql.permissions import check_declared
from app.gql.pipeline import PipelineMutations, PipelineQueries, PipelineSubscription
from app.gql.schedules import ScheduleMutations, ScheduleQueries, ScheduleSubscription
from app.gql.subscriptions import TaskSubscription
from app.gql.task_types import TaskTypeQueries
from app.gql.tasks import TaskMutations, TaskQueries
from app.gql.viewer import ViewerQueries
from app.gql.workflows import WorkflowMutations, WorkflowQueries, WorkflowSubscription
from app.platform.outages import STORE_ERRORS, is_data_error, is_outage

Query = merge_types(
    "Query",
    (
        TaskQueries,
        TaskTypeQueries,
        WorkflowQueries,
        ScheduleQueries,
        MonitoringQueries,
        LlmQueries,
        PipelineQueries,
        AgentQueries,
        AlertQueries,
        ObserveQueries,
        WebhookQueries,
        JobQueries,
        PromptQueries,
        AuditQueries,
        ViewerQueries,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        TaskMutations,
        WorkflowMutations,
        ScheduleMutations,
        LlmMutations,
        PipelineMutations,
        AgentMutations,
        AlertMutations,
        LogMutations,
        WebhookMutations,
        JobMutations,
        PromptMutations,
        AuditMutations,
    ),
)
Subscription = merge_types(
    "Subscription",
    (
        TaskSubscription,
        WorkflowSubscription,
        ScheduleSubscription,
        LlmSubscription,
        PipelineSubscription,
        MonitoringSubscription,
        LogSubscription,
        JobSubscription,
        WorkerSubscription,
    ),
)


class MaskUnexpected(MaskErrors):
    """Unexpected errors are masked; a store outage says so with code UNAVAILABLE; a value its
    column cannot hold is BAD_USER_INPUT naming the field."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        unstorable = unstorable_error(error)
        if unstorable is not None:
            return unstorable
        original = error.original_error
        if isinstance(original, STORE_ERRORS) and is_data_error(original):
            return _instead(error, "a value in this request cannot be stored", "BAD_USER_INPUT")
        if isinstance(original, STORE_ERRORS) and is_outage(original):
            message = "service unavailable: a backing store is unreachable; retry shortly"
            return _instead(error, message, "UNAVAILABLE")
        return super().anonymise_error(error)


def _instead(error: GraphQLError, message: str, code: str) -> GraphQLError:
    """`error` told otherwise, at the same place."""
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": code},
    )


def _mask(error: GraphQLError) -> bool:
    # Expected errors (validation, permissions, user input) are GraphQLErrors; anything else
    # is a bug whose details must not reach the client.
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


class OpsgraphSchema(SharingSchema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_errors(errors)


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    s = settings or Settings()
    extensions: list[object] = [
        ParserCache(maxsize=512),
        ValidationCache(maxsize=512),
        AddValidationRules([TextLiteralRule]),
        RefuseUnstorableVariables,
        QueryDepthLimiter(max_depth=s.max_query_depth),
        MaxTokensLimiter(max_token_count=s.max_query_tokens),
        MaxAliasesLimiter(max_alias_count=s.max_query_aliases),
        *cost_extensions(s.max_query_cost, s.page_size_max),
        MaskUnexpected(should_mask_error=_mask),
    ]
    if not s.introspection_enabled:
        from strawberry.extensions import DisableIntrospection

        extensions.append(DisableIntrospection())
    schema = OpsgraphSchema(
        subscriber_buffer=s.subscriber_buffer,
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,  # type: ignore[arg-type]
        config=StrawberryConfig(auto_camel_case=True),
        execution_context_class=LeanExecutionContext,
    )
    check_declared(schema)
    return schema
