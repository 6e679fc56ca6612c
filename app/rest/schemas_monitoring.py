"""Seed 001's response models (field names, order and nullability as the document shows)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class _TaskHead(BaseModel):
    """The fields every task answer opens with (seed 001's order)."""

    id: uuid.UUID
    task_type: str
    provider_type: str | None = None
    status: str
    progress: float = 0.0
    origin_instance: str
    origin_zone: str | None = None
    origin_tenant_id: str | None = None


class TaskListItem(_TaskHead):
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: float | None = Field(None, description="Duration in milliseconds")
    has_error: bool = Field(description="Whether task has any errors")


class TaskListResponse(BaseModel):
    items: list[TaskListItem]
    total: int
    page: int
    page_size: int
    pages: int


class TaskDetailResponse(_TaskHead):
    origin_reference: str | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: float | None = None
    queue_name: str = "inference"
    priority: int = 0
    celery_task_id: str | None = None
    service_task_id: str | None = None
    executor_type: str | None = None
    executor_instance: str | None = None
    config: dict[str, Any] | None = None
    webhook_url: str | None = None
    errors: list[str] | None = None
    retry_count: int = 0
    is_resumed: bool = False
    resume_attempt_count: int = 0
    last_resume_attempt: datetime | None = None
    service_requests: list[dict[str, Any]] | None = None
    task_data: dict[str, Any] = Field(default_factory=dict)


class MediaItem(BaseModel):
    name: str
    path: str
    url: str
    media_type: str


class TaskMediaResponse(BaseModel):
    task_id: uuid.UUID
    inputs: list[MediaItem] = Field(default_factory=list)
    outputs: list[MediaItem] = Field(default_factory=list)


class AggregateStats(BaseModel):
    total_tasks: int
    by_status: dict[str, int] = Field(default_factory=dict)
    by_provider: dict[str, int] = Field(default_factory=dict)
    by_task_type: dict[str, int] = Field(default_factory=dict)
    tasks_last_hour: int = 0
    tasks_last_24h: int = 0


class QueueStats(BaseModel):
    name: str
    depth: int = 0
    active_workers: int = 0
    active_tasks: int = 0
    reserved_tasks: int = 0
    avg_wait_time_ms: float | None = None
    tasks_completed_last_hour: int = 0


class QueueStatsResponse(BaseModel):
    queues: list[QueueStats] = Field(default_factory=list)
    total_pending: int = 0
    total_active: int = 0
    timestamp: datetime


class WorkerInfo(BaseModel):
    name: str
    queues: list[str]
    concurrency: int
    active_tasks: int
    utilization_pct: float
    has_capacity: bool
    tasks_completed_total: int
    tasks_per_minute: float
    memory_mb: float | None = None


class WorkerStatsResponse(BaseModel):
    workers: list[WorkerInfo] = Field(default_factory=list)
    total_workers: int = 0
    total_capacity: int = 0
    total_active: int = 0
    total_utilization_pct: float = 0.0
    workers_at_capacity: int = 0
    timestamp: datetime


class WorkerHealthResponse(BaseModel):
    healthy: bool
    total_workers: int = 0
    workers_with_capacity: int = 0
    queues_with_workers: list[str] = Field(default_factory=list)
    queues_without_workers: list[str] = Field(default_factory=list)
    timestamp: datetime
