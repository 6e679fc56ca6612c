"""The pipeline's deployment settings as the services need them (built from app.config)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from app.services.tasks.specs import TaskDefaults


@dataclass(frozen=True)
class PipelineConfig:
    window_seconds: float = 90.0
    idle_seconds: float = 30.0
    max_size: int = 50
    detection_queue: str = "detection_queue"
    enrichment_queue: str = "enrichment_queue"
    analysis_queue: str = "analysis_queue"
    max_retries: int = 3
    detector: str = "yolo26"
    enricher: str = "florence-2"
    analyzer: str = "nemotron"
    analyzer_model: str = "nemotron"
    task_defaults: TaskDefaults = field(default_factory=TaskDefaults)

    @property
    def queues(self) -> tuple[str, str, str]:
        return (self.detection_queue, self.enrichment_queue, self.analysis_queue)


def config_of(session: AsyncSession) -> PipelineConfig:
    """The process's settings, carried on every session (see make_sessionmaker)."""
    config = session.info.get("pipeline")
    return config if isinstance(config, PipelineConfig) else PipelineConfig()
