"""ORM models, one module per domain; importing this package registers them all."""

from app.db.models.agents import Agent, AgentControl, AgentSample
from app.db.models.audit import AuditRecord, Evaluation
from app.db.models.auth import ApiKey
from app.db.models.counters import TaskCounter, TaskRollup, WorkflowCounter, WorkflowRollup
from app.db.models.idempotency import IdempotencyKey
from app.db.models.llm import LlmStatsState
from app.db.models.monitoring import (
    AgentLog,
    Alert,
    AlertPending,
    AlertRule,
    MonitoringPass,
    WebhookSubscription,
)
from app.db.models.pipeline import Batch, CameraImage, Detection, Enrichment, SecurityEvent
from app.db.models.prompts import PromptVersion
from app.db.models.schedules import Schedule, ScheduleFire
from app.db.models.tasks import Task, TaskLog, TaskTransition, TaskTypeDefinition
from app.db.models.webhooks import WebhookDelivery
from app.db.models.workflows import Workflow, WorkflowStep

__all__ = [
    "Agent",
    "AgentControl",
    "AgentLog",
    "AgentSample",
    "Alert",
    "AlertPending",
    "AlertRule",
    "ApiKey",
    "AuditRecord",
    "Batch",
    "CameraImage",
    "Detection",
    "Enrichment",
    "Evaluation",
    "IdempotencyKey",
    "LlmStatsState",
    "MonitoringPass",
    "PromptVersion",
    "Schedule",
    "ScheduleFire",
    "SecurityEvent",
    "Task",
    "TaskCounter",
    "TaskLog",
    "TaskRollup",
    "TaskTransition",
    "TaskTypeDefinition",
    "WebhookDelivery",
    "WebhookSubscription",
    "Workflow",
    "WorkflowCounter",
    "WorkflowRollup",
    "WorkflowStep",
]
