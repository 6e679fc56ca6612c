"""The camera pipeline in GraphQL: security events, batches, enrichments, the DLQ, circuit
breakers and system health; their mutations and live subscriptions."""

from app.gql.pipeline.mutations import PipelineMutations
from app.gql.pipeline.queries import PipelineQueries
from app.gql.pipeline.subscriptions import PipelineSubscription

__all__ = ["PipelineMutations", "PipelineQueries", "PipelineSubscription"]
