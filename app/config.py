"""Every knob opsgraph has, read from OPSGRAPH_* environment variables with documented defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.kernel.bounds import PAGE_SIZE_MAX, PRIORITY_MAX, PRIORITY_MIN
from app.services.agents.status import StatusRules
from app.services.fleet.breakers import BreakerConfig
from app.services.fleet.health import ModelService
from app.services.jobs.config import JobsConfig
from app.services.jobs.types import JOB_TYPES
from app.services.llm.semaphore import SemaphoreConfig
from app.services.monitoring.config import MonitoringConfig
from app.services.pipeline.config import PipelineConfig
from app.services.schedules.config import ScheduleRules
from app.services.tasks.specs import TaskDefaults

DEFAULT_PRICES: dict[str, dict[str, float]] = {
    # USD per 1,000 tokens; unknown models cost 0 (with a warning). Every model opsgraph itself
    # asks for by default has a price, so spend is counted (and budgeted) out of the box:
    # the simulated provider's, the analyzer's and the enricher's (a self-hosted model's
    # figure is notional: set OPSGRAPH_PRICES to what it costs you).
    "simulated-chat": {"input": 0.0005, "output": 0.0015},
    "simulated-embedding": {"input": 0.0001, "output": 0.0},
    "nemotron": {"input": 0.0002, "output": 0.0006},
    "florence-2": {"input": 0.0001, "output": 0.0003},
    "gpt-4o-mini": {"input": 0.00015, "output": 0.0006},
    "gpt-4o": {"input": 0.0025, "output": 0.01},
    "text-embedding-3-small": {"input": 0.00002, "output": 0.0},
}


def asyncpg_url(url: str) -> str:
    """Users paste plain postgresql:// URLs; the async engine needs the asyncpg driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


class Settings(BaseSettings):
    """opsgraph settings. Each field maps to the environment variable OPSGRAPH_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="OPSGRAPH_", extra="ignore")

    # Stores
    database_url: str = Field(
        "", description="PostgreSQL URL (postgresql://...). Empty: `opsgraph dev` starts one."
    )
    redis_url: str = Field("", description="Redis URL (redis://...). Empty: dev starts one.")
    db_pool_size: int = Field(
        10,
        description="SQLAlchemy pool size per process (an API process also keeps a second,"
        " half-size pool of autocommit connections for single-statement list reads).",
    )
    data_dir: Path = Field(Path(".opsgraph"), description="Folder for dev data (embedded servers).")

    # API
    dev: bool = Field(False, description="Development mode: GraphiQL and introspection on.")
    graphiql: bool | None = Field(
        None, description="Serve GraphiQL at GET /graphql (default: dev)."
    )
    introspection: bool | None = Field(None, description="Allow introspection (default: dev).")
    legacy_graphql_ws: bool = Field(
        False, description="Also accept the legacy graphql-ws protocol."
    )
    max_subscriptions_per_connection: int = Field(100, description="Per websocket connection.")
    ws_per_message_deflate: bool = Field(
        False,
        description="Offer permessage-deflate on websockets. Off by default: subscription "
        "messages are small, and compressing each one per connection cost more CPU than the "
        "send itself (and a zlib context per connection).",
    )
    subscriber_buffer: int = Field(
        64, description="Events buffered per subscription before snapshots are coalesced."
    )
    max_body_bytes: int = Field(1_048_576, description="Largest accepted request body (bytes).")
    max_query_depth: int = Field(12, description="Deepest GraphQL selection accepted.")
    max_query_tokens: int = Field(4000, description="Most tokens in one GraphQL document.")
    max_query_aliases: int = Field(30, description="Most aliases in one GraphQL document.")
    page_size_max: int = Field(PAGE_SIZE_MAX, description="Largest page any list returns.")
    max_query_cost: int = Field(
        25_000, description="Most a GraphQL document may cost (fields x page sizes)."
    )
    max_thumbnails_per_operation: int = Field(
        100,
        ge=0,
        description="Most thumbnails (`Detection.thumbnail`, a file read and an image decode"
        " each) one GraphQL operation may ask for, counted from the document as the cost is"
        " (aliases x page sizes); more is refused at validation. The console asks for 80.",
    )
    thumbnail_threads: int = Field(
        2,
        ge=1,
        description="Threads per API process that make thumbnails: no more decodes than this"
        " run at once (the event loop never decodes); the others wait their turn.",
    )
    thumbnail_cache_size: int = Field(
        512,
        ge=0,
        description="Thumbnails kept per API process by (detection, size), least recently"
        " used dropped first (each a few KB; 320 px ones about 30 KB); 0: none kept.",
    )
    sync_wait_seconds: float = Field(
        5.0, description="How long POST /api/v1/tasks waits for a result before 'Processing'."
    )

    # Auth
    jwt_secret: str = Field("", description="HS256 secret for bearer tokens (dev: generated).")
    jwt_public_key: str = Field("", description="PEM public key; when set, RS256/ES256 are used.")
    jwt_algorithm: str = Field("HS256", description="JWT algorithm.")
    jwt_issuer: str = Field("opsgraph", description="`iss` claim written and required.")
    token_ttl_seconds: int = Field(86_400, description="Default lifetime of `opsgraph token`.")
    console_code_ttl_seconds: float = Field(
        300.0,
        gt=0,
        description="How long the one-time sign-in code of `opsgraph dev`'s console link"
        " stays usable (it is also spent by its first use).",
    )
    ws_reauth_seconds: float = Field(
        60.0,
        gt=0,
        description="How often an open websocket's credential is checked again (closed with "
        "4403 once expired or revoked; a token is also checked at its expiry).",
    )
    metrics_key: str = Field(
        "",
        description="Bearer credential a Prometheus scraper may use for GET /metrics "
        "(besides an admin role). Empty: admins only.",
    )
    metrics_cache_seconds: float = Field(
        10.0, ge=0, description="GET /metrics computes fleet figures at most this often."
    )
    health_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="Health answers (every health route and field) probe PostgreSQL, Redis"
        " and the model services at most this often per API process; 0: every call.",
    )

    # Workers and the task lifecycle
    queues: list[str] = Field(
        default_factory=lambda: [
            "llm",
            "operations",
            "default",
            "detection_queue",
            "enrichment_queue",
            "analysis_queue",
        ],
        description="Queues a worker consumes when --queues is not given; all known queues.",
    )
    reserved_queues: list[str] = Field(
        default_factory=list,
        description="Queues only opsgraph's own tasks use, besides the camera pipeline's (always"
        " reserved): a client's task or workflow step naming one is refused (RESERVED_QUEUE).",
    )
    worker_concurrency: int = Field(10, description="Tasks one worker process runs at once.")
    worker_name: str = Field("", description="Worker name (default: worker-<pid>@<host>).")
    worker_poll_seconds: float = Field(
        0.05,
        gt=0,
        le=5,
        description="An idle worker looks for new jobs this often (a freed slot wakes it at once).",
    )
    worker_claim_depth: int = Field(
        1000,
        ge=1,
        description="Ready jobs one claim looks through per queue, the jobs every worker is"
        " running included: keep it above the fleet's total concurrency on one queue.",
    )
    job_timeout_seconds: float = Field(
        600, description="Longest one attempt may run (waiting for an LLM slot not included)."
    )
    max_queued_per_tenant: int | None = Field(
        None,
        ge=1,
        description="At most this many QUEUED tasks per tenant: a client's submission beyond it "
        "is refused (TOO_MANY_QUEUED, REST 429); null: no cap. Workflow steps, child tasks and "
        "a schedule's ticks (work admitted earlier) are not refused.",
    )
    idempotency_ttl: float = Field(
        86_400,
        gt=0,
        le=30 * 86_400,
        description="Seconds a submission's idempotency key is kept: the same key with the same "
        "request answers the task or workflow it made; with another request, a conflict.",
    )
    max_delay_seconds: float = Field(
        365 * 86_400,
        gt=0,
        description="How far ahead a task may be submitted to run (runAt, delaySeconds); "
        "further is refused naming the field.",
    )
    due_poll_seconds: float = Field(
        0.2,
        gt=0,
        le=5,
        description="How often a worker looks for tasks whose time has come (one pass at a "
        "time across the fleet).",
    )
    min_schedule_seconds: float = Field(
        60.0, gt=0, description="The shortest interval a schedule's cron may fire at."
    )
    schedule_misfire_seconds: float = Field(
        10.0,
        gt=0,
        description="A tick fired later than this after its time counts as missed (after "
        "downtime): the schedule's catchUp decides whether it runs.",
    )
    schedule_poll_seconds: float = Field(
        1.0, gt=0, le=30, description="How often a worker looks for schedules due to fire."
    )
    max_result_bytes: int = Field(
        1_048_576,
        gt=0,
        description="Largest result (as JSON) a task handler may return; a larger one fails "
        "the attempt fatally and stores nothing of it.",
    )
    cancel_grace_seconds: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="How long a running handler of a user's task type has to stop on its own "
        "once a cancel is requested (ctx.cancelled is true) before the attempt is aborted.",
    )
    job_time_limits: dict[str, float] = Field(
        default_factory=dict,
        description="Longest one attempt of a background job may run, per job type (export,"
        " ai_processing, cleanup); each type's own limit (3600 s) otherwise. JSON object.",
    )
    llm_slot_wait_max_seconds: float = Field(
        86_400,
        gt=0,
        description="Longest a job waits for an LLM slot before it goes back to its queue.",
    )
    heartbeat_interval_seconds: float = Field(5.0, description="Worker heartbeat period.")
    heartbeat_ttl_seconds: float = Field(20.0, description="A worker without heartbeat is dead.")
    reconcile_interval_seconds: float = Field(10.0, description="Reconciler period.")
    reconcile_grace_seconds: float = Field(
        5.0, description="A QUEUED task younger than this is not re-enqueued by the reconciler."
    )
    retry_max_retries: int = Field(3, description="Retries after the first attempt (seed 002).")
    retry_base_delay_seconds: float = Field(1.0, description="First backoff delay.")
    retry_max_delay_seconds: float = Field(30.0, description="Backoff ceiling.")
    retry_exponential_base: float = Field(2.0, description="Backoff growth factor.")
    retry_jitter: float = Field(0.25, description="Up to this fraction is added as jitter.")
    result_ttl_seconds: int = Field(
        3600,
        description="Result TTL recorded on tasks (informational: results stay in "
        "PostgreSQL until the task is cleared).",
    )

    # Providers
    llm_base_url: str = Field(
        "", description="OpenAI-compatible base URL (…/v1). Empty: the simulated provider."
    )
    llm_api_key: str = Field("", description="Bearer key for the LLM endpoint.")
    llm_chat_model: str = Field("gpt-4o-mini", description="Default chat model (HTTP provider).")
    llm_embedding_model: str = Field("text-embedding-3-small", description="Default embed model.")
    llm_timeout_seconds: float = Field(60.0, description="HTTP provider request timeout.")
    simulated_latency_ms: int = Field(50, description="Default latency of the simulated provider.")
    prices: dict[str, dict[str, float]] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        description="USD per 1,000 input/output tokens, per model (JSON).",
    )

    # The LLM queue (seed 000)
    llm_queues: list[str] = Field(
        default_factory=lambda: ["llm", "operations"],
        description="Queues seed 000's stats report (besides any queue holding LLM tasks).",
    )
    llm_max_concurrent: int = Field(4, ge=1, description="LLM calls at once, all workers.")
    llm_reserved_high_priority: int = Field(
        1, ge=0, description="Slots only high-priority tasks may take."
    )
    llm_high_priority_threshold: int = Field(
        50,
        ge=PRIORITY_MIN,
        le=PRIORITY_MAX,
        description="Priority at or above which a task is high priority.",
    )
    llm_lease_ttl_seconds: float = Field(
        30.0, gt=0, description="A slot's lease; renewed while the call runs, freed if not."
    )
    llm_queue_max_depth: int = Field(100, ge=1, description="Depth reported as 100 % full.")

    # Webhooks
    webhook_secret: str = Field("", description="HMAC-SHA256 key for webhook signatures.")
    webhook_timeout_seconds: float = Field(10.0, description="Per delivery attempt.")
    webhook_max_attempts: int = Field(5, description="Delivery attempts before giving up.")
    webhook_allow_private_networks: bool = Field(
        False,
        description="Allow the webhooks users give (tasks, workflows, webhook subscriptions) to"
        " reach loopback, private, link-local and reserved addresses: for local receivers in"
        " development only, never on an installation with tenants (off in every mode by"
        " default, dev included). Alert channels do not follow it: see"
        " ALERT_CHANNEL_ALLOWED_TARGETS.",
    )
    alert_channel_allowed_targets: list[str] = Field(
        default_factory=list,
        description="Host names and networks (CIDR, e.g. 10.1.2.0/24) the operator-configured"
        " alert channels may reach besides public addresses (an internal Slack or email"
        " bridge). JSON list. Only ALERT_CHANNEL_URLS use it; URLs users give stay public-only.",
    )
    outbox_poll_seconds: float = Field(
        1.0, gt=0, description="How often workers look for webhook deliveries that are due."
    )

    # The camera AI pipeline (seed 002)
    camera_root: Path | None = Field(
        None,
        description="Folder holding one folder per camera (<root>/<camera_id>/); watched by the"
        " worker started with --watch (or OPSGRAPH_WATCH). Default: <data_dir>/cameras.",
    )
    watch: bool = Field(False, description="This worker process watches the camera folders.")
    camera_settle_seconds: float = Field(
        1.0, ge=0, description="A file must stay unchanged this long before it is read."
    )
    camera_rescan_seconds: float = Field(
        60.0,
        gt=0,
        description="A full rescan of the camera folders this often (a safety net"
        " for events the OS did not deliver; known files are not read again).",
    )
    camera_extensions: list[str] = Field(
        [".jpg", ".jpeg", ".png", ".webp"],
        description="File name endings the watcher takes as images (decoded as JPEG, PNG or"
        " WebP only, whatever the ending).",
    )
    camera_max_image_bytes: int = Field(
        25 * 1024 * 1024,
        gt=0,
        description="Largest image file the pipeline reads; a larger one fails at once as"
        " 'Invalid image format' (not retried).",
    )
    camera_max_image_pixels: int = Field(
        40_000_000,
        gt=0,
        description="Most pixels (width x height) an image may declare; checked from its header"
        " before decoding, so a decompression bomb fails at once (not retried).",
    )
    batch_window_seconds: float = Field(
        90.0, gt=0, description="A batch closes this long after it opened."
    )
    batch_idle_seconds: float = Field(
        30.0, gt=0, description="A batch closes after this long without a new detection."
    )
    batch_max_size: int = Field(50, ge=1, description="A batch closes at this many detections.")
    batch_check_seconds: float = Field(
        1.0, gt=0, description="How often workers look for batches whose deadline has passed."
    )
    detection_queue: str = Field("detection_queue", description="Queue of detection tasks.")
    enrichment_queue: str = Field("enrichment_queue", description="Queue of enrichment tasks.")
    analysis_queue: str = Field("analysis_queue", description="Queue of analysis tasks.")
    pipeline_max_retries: int = Field(3, ge=0, description="Retries of a pipeline stage.")
    detector_name: str = Field("yolo26", description="The detection model service's name.")
    detector_url: str = Field(
        "", description="Detection server base URL (POST <url>/detect); empty: simulated."
    )
    detector_timeout_seconds: float = Field(10.0, gt=0, description="Per detection call.")
    enricher_name: str = Field("florence-2", description="The enrichment model service's name.")
    enricher_base_url: str = Field(
        "", description="OpenAI-compatible vision endpoint for enrichment; empty: simulated."
    )
    enricher_api_key: str = Field("", description="Bearer key for the enrichment endpoint.")
    enricher_model: str = Field("florence-2", description="Model asked for enrichment.")
    enricher_timeout_seconds: float = Field(30.0, gt=0, description="Per enrichment call.")
    analyzer_name: str = Field("nemotron", description="The analysis model service's name.")
    analyzer_model: str = Field(
        "nemotron", description="Model asked for risk analysis (through the LLM provider)."
    )
    circuit_breaker_failure_threshold: int = Field(
        5, ge=1, description="Consecutive failures that open a model service's breaker."
    )
    circuit_breaker_recovery_timeout: float = Field(
        30.0, gt=0, description="Seconds an open breaker waits before letting test calls through."
    )
    circuit_breaker_success_threshold: int = Field(
        2, ge=1, description="Successful test calls that close a half-open breaker."
    )

    # AI agent monitoring (seed 004)
    agent_offline_seconds: float = Field(
        90.0, gt=0, description="An agent with no heartbeat for this long is offline."
    )
    agent_report_seconds: float = Field(
        15.0, gt=0, description="How often each worker reports itself as an opsgraph_worker agent."
    )
    agent_degraded_error_rate_percent: float = Field(
        5.0, ge=0, description="An agent whose 24-hour error rate exceeds this is degraded."
    )

    alert_eval_interval_seconds: float = Field(
        15.0, gt=0, description="How often the workers evaluate the alert rules."
    )
    alert_window_seconds: float = Field(
        300.0,
        gt=0,
        description="Rate and latency metrics of a rule are computed over this trailing window.",
    )
    alert_remediation_interval_seconds: float = Field(
        300.0,
        ge=0,
        description="Least time between two auto-remediation restarts for one open alert.",
    )
    alert_channel_urls: dict[str, str] = Field(
        default_factory=dict,
        description="Where a rule's channels deliver: a JSON object from channel name (webhook,"
        " slack, email, pagerduty) to a webhook URL, e.g. a Slack incoming webhook or an"
        " email/PagerDuty bridge. A rule naming an unconfigured channel is accepted; its"
        " notification is logged as skipped.",
    )
    monitoring_queue: str = Field(
        "default",
        description="Queue whose workers run metric exports and deliver monitoring webhooks.",
    )
    monitoring_clock_file: Path | None = Field(
        None,
        description="A file holding seconds to add to the monitoring clock (agents, alerts,"
        " logs, metrics); for exercising rules' duration clauses in tests and demos.",
    )
    log_retention_days: float = Field(
        14.0, gt=0, description="Agent log lines older than this are deleted by the evaluator."
    )
    metric_retention_days: float = Field(
        30.0, gt=0, description="Agent metric samples older than this are deleted."
    )

    # Background jobs (seed 002)
    jobs_queue: str = Field("default", description="Queue whose workers run background jobs.")
    task_retention_days: float = Field(
        30.0, gt=0, description="The cleanup job removes finished tasks older than this."
    )
    export_retention_days: float = Field(
        7.0, gt=0, description="The cleanup job removes export files older than this."
    )

    @field_validator("database_url")
    @classmethod
    def _asyncpg_url(cls, v: str) -> str:
        return asyncpg_url(v)

    def startup_problems(self) -> list[str]:
        """What stops `serve` and `worker` from starting (dev generates its secrets)."""
        problems = []
        if not self.webhook_secret:
            problems.append("OPSGRAPH_WEBHOOK_SECRET is empty: webhooks would be signed with it")
        if not self.jwt_secret and not self.jwt_public_key:
            problems.append("set OPSGRAPH_JWT_SECRET (HS256) or OPSGRAPH_JWT_PUBLIC_KEY")
        if self.jwt_public_key and self.jwt_algorithm.upper().startswith("HS"):
            problems.append(
                "OPSGRAPH_JWT_PUBLIC_KEY is set but OPSGRAPH_JWT_ALGORITHM is "
                f"{self.jwt_algorithm}: set it to the key's algorithm (RS256, ES256, ...)"
            )
        return problems

    @property
    def pipeline(self) -> PipelineConfig:
        return PipelineConfig(
            window_seconds=self.batch_window_seconds,
            idle_seconds=self.batch_idle_seconds,
            max_size=self.batch_max_size,
            detection_queue=self.detection_queue,
            enrichment_queue=self.enrichment_queue,
            analysis_queue=self.analysis_queue,
            max_retries=self.pipeline_max_retries,
            detector=self.detector_name,
            enricher=self.enricher_name,
            analyzer=self.analyzer_name,
            analyzer_model=self.analyzer_model,
            task_defaults=self.task_defaults,
        )

    @property
    def agent_rules(self) -> StatusRules:
        return StatusRules(
            offline_seconds=self.agent_offline_seconds,
            degraded_error_rate_percent=self.agent_degraded_error_rate_percent,
        )

    @property
    def known_queues(self) -> list[str]:
        """Every queue a deployment uses: the configured ones and the pipeline's."""
        return list(dict.fromkeys([*self.queues, *self.pipeline.queues]))

    @property
    def breakers(self) -> BreakerConfig:
        return BreakerConfig(
            failure_threshold=self.circuit_breaker_failure_threshold,
            recovery_timeout=self.circuit_breaker_recovery_timeout,
            success_threshold=self.circuit_breaker_success_threshold,
        )

    def model_services(self) -> list[ModelService]:
        """The pipeline's model services as health checks see them."""
        llm = self.llm_base_url.rstrip("/")
        return [
            ModelService(
                self.detector_name,
                "detection",
                "http" if self.detector_url else "simulated",
                f"{self.detector_url.rstrip('/')}/health" if self.detector_url else None,
            ),
            ModelService(
                self.enricher_name,
                "enrichment",
                "http" if self.enricher_base_url else "simulated",
                f"{self.enricher_base_url.rstrip('/')}/models" if self.enricher_base_url else None,
            ),
            ModelService(
                self.analyzer_name,
                "analysis",
                "http" if llm else "simulated",
                f"{llm}/models" if llm else None,
            ),
        ]

    def attempt_limit(self, task_type: str) -> float:
        """How long one attempt of this task type may run."""
        if task_type in JOB_TYPES:
            return self.job_time_limits.get(task_type, JOB_TYPES[task_type].time_limit_seconds)
        return self.job_timeout_seconds

    def longest_attempt(self) -> float:
        return max(self.attempt_limit(t) for t in (*JOB_TYPES, "llm"))

    def session_info(self) -> dict[str, object]:
        """What every session carries for the services (see make_sessionmaker)."""
        return {"pipeline": self.pipeline, "monitoring": self.monitoring, "jobs": self.jobs}

    @property
    def jobs(self) -> JobsConfig:
        return JobsConfig(
            queue=self.jobs_queue,
            exports_dir=self.data_dir / "exports",
            task_defaults=self.task_defaults,
            task_retention_days=self.task_retention_days,
            log_retention_days=self.log_retention_days,
            metric_retention_days=self.metric_retention_days,
            export_retention_days=self.export_retention_days,
        )

    @property
    def monitoring(self) -> MonitoringConfig:
        return MonitoringConfig(
            status=self.agent_rules,
            window_seconds=self.alert_window_seconds,
            remediation_interval_seconds=self.alert_remediation_interval_seconds,
            channel_urls=dict(self.alert_channel_urls),
            eval_interval_seconds=self.alert_eval_interval_seconds,
            queue=self.monitoring_queue,
            allow_private_webhooks=self.webhook_allow_private_networks,
            log_retention_days=self.log_retention_days,
            metric_retention_days=self.metric_retention_days,
            exports_dir=self.data_dir / "exports",
            task_defaults=self.task_defaults,
        )

    @property
    def cameras_folder(self) -> Path:
        return self.camera_root or self.data_dir / "cameras"

    @property
    def graphiql_enabled(self) -> bool:
        return self.dev if self.graphiql is None else self.graphiql

    @property
    def introspection_enabled(self) -> bool:
        return self.dev if self.introspection is None else self.introspection

    @property
    def task_defaults(self) -> TaskDefaults:
        return TaskDefaults(
            max_retries=self.retry_max_retries,
            result_ttl_seconds=self.result_ttl_seconds,
            allow_private_webhooks=self.webhook_allow_private_networks,
            reserved_queues=frozenset([*self.pipeline_queues, *self.reserved_queues]),
            max_delay_seconds=self.max_delay_seconds,
            idempotency_ttl_seconds=self.idempotency_ttl,
            max_queued_per_tenant=self.max_queued_per_tenant,
        )

    @property
    def schedules(self) -> ScheduleRules:
        return ScheduleRules(
            min_seconds=self.min_schedule_seconds,
            misfire_seconds=self.schedule_misfire_seconds,
            task_defaults=self.task_defaults,
        )

    @property
    def pipeline_queues(self) -> tuple[str, str, str]:
        return (self.detection_queue, self.enrichment_queue, self.analysis_queue)

    @property
    def semaphore(self) -> SemaphoreConfig:
        return SemaphoreConfig(
            max_concurrent=self.llm_max_concurrent,
            reserved_high_priority=min(
                self.llm_reserved_high_priority, self.llm_max_concurrent - 1
            ),
            high_priority_threshold=self.llm_high_priority_threshold,
            lease_ttl_seconds=self.llm_lease_ttl_seconds,
        )

    @property
    def llm_provider_name(self) -> str:
        return "openai" if self.llm_base_url else "simulated"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
