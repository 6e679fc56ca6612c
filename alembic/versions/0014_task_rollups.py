"""Figures that never scan the tasks table: counters per (queue, status, tenant, task type,
provider, model) and per-minute/per-hour rollups of when tasks were created, started and
finished, both kept by statement-level triggers in the same transaction as every change; the
same for workflows (counts per status and tenant with their steps, creations per minute/hour).

The triggers see each statement's rows as transition tables, net the old rows against the new
ones and upsert one row per changed key. A bulk insert of 1,000 tasks is a handful of upserts,
not 1,000 (the row-level trigger of 0007 updated one row many times in one statement).

Each backend writes rows of its own (`shard` is its pid), so concurrent transactions never
wait on each other's counter rows and cannot deadlock over them, whatever order their
statements come in (a workflow's insert and its first step's, a completion and the next
step's). Shard 0 holds what is folded in: the migration's recount, the connections' rows
the reconciler folds in (skipping rows a transaction holds) and clearing the statistics.

`since_reset` splits finished LLM tasks at the LLM statistics' reset marker: the trigger reads
the marker under a share lock and clearing the statistics, which updates the marker, folds the
`since_reset` rows back, so the two never race. Rollups are kept for 25 hours (the longest
window is 24 hours, to the minute); the reconciler prunes older buckets.

Revision ID: 0014
Revises: 0013
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
FINISHED = "('COMPLETED', 'FAILED', 'CANCELLED')"

# The rows a statement changed, each with the sign of its contribution.
SOURCES = {
    "INSERT": "SELECT 1 AS sign, n.* FROM new_rows n",
    "DELETE": "SELECT -1 AS sign, o.* FROM old_rows o",
    "UPDATE": "SELECT -1 AS sign, o.* FROM old_rows o UNION ALL SELECT 1, n.* FROM new_rows n",
}

BODY = """
DECLARE
  my_shard integer := pg_backend_pid();
  reset_at_ timestamptz;
BEGIN
  IF EXISTS (SELECT 1 FROM ({src}) s WHERE s.task_type = 'llm' AND s.status IN {finished}) THEN
    SELECT reset_at INTO reset_at_ FROM llm_stats_state WHERE id = 1 FOR SHARE;
  END IF;

  INSERT INTO task_counters AS c (queue, status, tenant, task_type, provider, model,
    since_reset, shard, tasks, input_tokens, output_tokens, cost_usd, latency_ms_sum,
    latencies, generation_ms_sum)
  SELECT d.queue, d.status, d.tenant, d.task_type, d.provider, d.model, d.since_reset, my_shard,
    sum(d.sign), sum(d.sign * d.input_tokens), sum(d.sign * d.output_tokens),
    sum(d.sign * d.cost_usd), coalesce(sum(d.sign * d.latency_ms), 0),
    sum(d.sign * (d.latency_ms IS NOT NULL)::int),
    coalesce(sum(d.sign * d.latency_ms) FILTER (WHERE d.output_tokens > 0), 0)
  FROM (
    SELECT s.sign, s.queue, s.status, coalesce(s.origin_tenant_id, '') AS tenant, s.task_type,
      coalesce(s.provider, '') AS provider, coalesce(s.model, '') AS model,
      (s.task_type = 'llm' AND s.status IN {finished}
        AND (reset_at_ IS NULL OR s.completed_at > reset_at_)) IS TRUE AS since_reset,
      s.input_tokens::bigint AS input_tokens, s.output_tokens::bigint AS output_tokens,
      s.cost_usd, s.latency_ms
    FROM ({src}) s
  ) d
  GROUP BY 1, 2, 3, 4, 5, 6, 7
  HAVING sum(d.sign) <> 0 OR sum(d.sign * d.input_tokens) <> 0
    OR sum(d.sign * d.output_tokens) <> 0 OR sum(d.sign * d.cost_usd) <> 0
    OR coalesce(sum(d.sign * d.latency_ms), 0) <> 0
    OR sum(d.sign * (d.latency_ms IS NOT NULL)::int) <> 0
  ORDER BY 1, 2, 3, 4, 5, 6, 7
  ON CONFLICT (queue, status, tenant, task_type, provider, model, since_reset, shard)
  DO UPDATE SET
    tasks = c.tasks + EXCLUDED.tasks,
    input_tokens = c.input_tokens + EXCLUDED.input_tokens,
    output_tokens = c.output_tokens + EXCLUDED.output_tokens,
    cost_usd = c.cost_usd + EXCLUDED.cost_usd,
    latency_ms_sum = c.latency_ms_sum + EXCLUDED.latency_ms_sum,
    latencies = c.latencies + EXCLUDED.latencies,
    generation_ms_sum = c.generation_ms_sum + EXCLUDED.generation_ms_sum;

  INSERT INTO task_rollups AS r (bucket, grain, kind, queue, tenant, status, shard, tasks,
    wait_ms_sum, duration_s_sum, durations)
  SELECT d.bucket, d.grain, d.kind, d.queue, d.tenant, d.status, my_shard, sum(d.sign),
    sum(d.sign * d.wait_ms), sum(d.sign * d.duration_s), sum(d.sign * d.durations)
  FROM (
    SELECT s.sign, s.queue, coalesce(s.origin_tenant_id, '') AS tenant, v.*
    FROM ({src}) s CROSS JOIN LATERAL (VALUES
      (date_trunc('minute', s.created_at), 'm', 'c', '', 0::float8, 0::float8, 0),
      (date_trunc('hour', s.created_at), 'h', 'c', '', 0::float8, 0::float8, 0),
      (date_trunc('minute', s.started_at), 'm', 's', '',
        extract(epoch FROM s.started_at - s.created_at)::float8 * 1000, 0::float8, 0),
      (CASE WHEN s.status IN {finished} THEN date_trunc('minute', s.completed_at) END, 'm', 'f',
        s.status, 0::float8,
        coalesce(extract(epoch FROM s.completed_at - s.started_at)::float8, 0),
        (s.started_at IS NOT NULL)::int)
    ) AS v (bucket, grain, kind, status, wait_ms, duration_s, durations)
    WHERE v.bucket >= now() - interval '25 hours'
  ) d
  GROUP BY 1, 2, 3, 4, 5, 6
  HAVING sum(d.sign) <> 0 OR sum(d.sign * d.wait_ms) <> 0 OR sum(d.sign * d.duration_s) <> 0
    OR sum(d.sign * d.durations) <> 0
  ORDER BY 1, 2, 3, 4, 5, 6
  ON CONFLICT (kind, grain, bucket, queue, tenant, status, shard) DO UPDATE SET
    tasks = r.tasks + EXCLUDED.tasks,
    wait_ms_sum = r.wait_ms_sum + EXCLUDED.wait_ms_sum,
    duration_s_sum = r.duration_s_sum + EXCLUDED.duration_s_sum,
    durations = r.durations + EXCLUDED.durations;
  RETURN NULL;
END
"""

# The same figures computed from scratch, for rows that exist when the migration runs.
RECOUNT = f"""
INSERT INTO task_counters
SELECT queue, status, coalesce(origin_tenant_id, ''), task_type, coalesce(provider, ''),
  coalesce(model, ''),
  (task_type = 'llm' AND status IN {FINISHED} AND (
    (SELECT reset_at FROM llm_stats_state WHERE id = 1) IS NULL
    OR completed_at > (SELECT reset_at FROM llm_stats_state WHERE id = 1))) IS TRUE,
  0, count(*), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
  coalesce(sum(cost_usd), 0), coalesce(sum(latency_ms), 0), count(latency_ms),
  coalesce(sum(latency_ms) FILTER (WHERE output_tokens > 0), 0)
FROM tasks GROUP BY 1, 2, 3, 4, 5, 6, 7
"""

REROLL = f"""
INSERT INTO task_rollups (bucket, grain, kind, queue, tenant, status, shard, tasks,
  wait_ms_sum, duration_s_sum, durations)
SELECT v.bucket, v.grain, v.kind, t.queue, coalesce(t.origin_tenant_id, ''), v.status, 0,
  count(*), sum(v.wait_ms), sum(v.duration_s), sum(v.durations)
FROM tasks t CROSS JOIN LATERAL (VALUES
  (date_trunc('minute', t.created_at), 'm', 'c', '', 0::float8, 0::float8, 0),
  (date_trunc('hour', t.created_at), 'h', 'c', '', 0::float8, 0::float8, 0),
  (date_trunc('minute', t.started_at), 'm', 's', '',
    extract(epoch FROM t.started_at - t.created_at)::float8 * 1000, 0::float8, 0),
  (CASE WHEN t.status IN {FINISHED} THEN date_trunc('minute', t.completed_at) END, 'm', 'f',
    t.status, 0::float8, coalesce(extract(epoch FROM t.completed_at - t.started_at)::float8, 0),
    (t.started_at IS NOT NULL)::int)
) AS v (bucket, grain, kind, status, wait_ms, duration_s, durations)
WHERE v.bucket >= now() - interval '25 hours'
  AND (t.created_at >= now() - interval '25 hours' OR t.started_at >= now() - interval '25 hours'
    OR t.completed_at >= now() - interval '25 hours')
GROUP BY 1, 2, 3, 4, 5, 6
"""


# Workflows: counts per (status, tenant) with their steps, and creations per minute and hour.
WORKFLOW_BODY = """
DECLARE
  my_shard integer := pg_backend_pid();
BEGIN
  INSERT INTO workflow_counters AS c (status, tenant, shard, workflows, steps)
  SELECT d.status, d.tenant, my_shard, sum(d.sign), sum(d.sign * d.steps)
  FROM (SELECT s.sign, s.status, coalesce(s.origin_tenant_id, '') AS tenant,
      s.total_steps::bigint AS steps FROM ({src}) s) d
  GROUP BY 1, 2
  HAVING sum(d.sign) <> 0 OR sum(d.sign * d.steps) <> 0
  ORDER BY 1, 2
  ON CONFLICT (status, tenant, shard) DO UPDATE SET
    workflows = c.workflows + EXCLUDED.workflows, steps = c.steps + EXCLUDED.steps;

  INSERT INTO workflow_rollups AS r (bucket, grain, tenant, shard, workflows)
  SELECT d.bucket, d.grain, d.tenant, my_shard, sum(d.sign)
  FROM (
    SELECT s.sign, coalesce(s.origin_tenant_id, '') AS tenant, v.*
    FROM ({src}) s CROSS JOIN LATERAL (VALUES
      (date_trunc('minute', s.created_at), 'm'), (date_trunc('hour', s.created_at), 'h')
    ) AS v (bucket, grain)
    WHERE v.bucket >= now() - interval '25 hours'
  ) d
  GROUP BY 1, 2, 3
  HAVING sum(d.sign) <> 0
  ORDER BY 1, 2, 3
  ON CONFLICT (grain, bucket, tenant, shard) DO UPDATE SET
    workflows = r.workflows + EXCLUDED.workflows;
  RETURN NULL;
END
"""


def _triggers(table: str, body: str) -> None:
    for op_name, src in SOURCES.items():
        name = f"opsgraph_count_{table}_{op_name.lower()}"
        code = body.format(src=src, finished=FINISHED)
        op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $${code}$$")
        tables = {
            "INSERT": "NEW TABLE AS new_rows",
            "DELETE": "OLD TABLE AS old_rows",
            "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        }[op_name]
        op.execute(
            f"CREATE TRIGGER {table}_counted_{op_name.lower()} AFTER {op_name} ON {table} "
            f"REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )


def upgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS tasks_recounted ON tasks")
    op.execute("DROP TRIGGER IF EXISTS tasks_counted ON tasks")
    op.execute("DROP FUNCTION IF EXISTS opsgraph_count_task()")
    op.execute(
        "DROP FUNCTION IF EXISTS opsgraph_bump(text, text, text, smallint, bigint, bigint, "
        "bigint, double precision)"
    )
    op.drop_table("task_counters")
    # There is always a marker row to lock (NULL: never reset).
    op.alter_column("llm_stats_state", "reset_at", nullable=True)
    op.execute("INSERT INTO llm_stats_state (id, reset_at) VALUES (1, NULL) ON CONFLICT DO NOTHING")

    op.create_table(
        "task_counters",
        sa.Column("queue", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("tenant", sa.String(255), primary_key=True),  # '' for no tenant
        sa.Column("task_type", sa.String(64), primary_key=True),
        sa.Column("provider", sa.String(64), primary_key=True),  # '' for none
        sa.Column("model", sa.String(255), primary_key=True),  # '' for none
        sa.Column("since_reset", sa.Boolean(), primary_key=True),
        sa.Column("shard", sa.Integer(), primary_key=True),
        sa.Column("tasks", sa.BigInteger(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("latency_ms_sum", sa.Float(), nullable=False),
        sa.Column("latencies", sa.BigInteger(), nullable=False),
        sa.Column("generation_ms_sum", sa.Float(), nullable=False),
    )
    # keyed kind, grain, then time: a window reads one tight index range per kind and grain
    op.create_table(
        "task_rollups",
        sa.Column("kind", sa.String(1), primary_key=True),  # c(reated), s(tarted), f(inished)
        sa.Column("grain", sa.String(1), primary_key=True),  # m(inute), h(our)
        sa.Column("bucket", TS, primary_key=True),
        sa.Column("queue", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(255), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),  # '' unless finished
        sa.Column("shard", sa.Integer(), primary_key=True),
        sa.Column("tasks", sa.BigInteger(), nullable=False),
        sa.Column("wait_ms_sum", sa.Float(), nullable=False),
        sa.Column("duration_s_sum", sa.Float(), nullable=False),
        sa.Column("durations", sa.BigInteger(), nullable=False),
    )
    _triggers("tasks", BODY)
    op.create_table(
        "workflow_counters",
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("tenant", sa.String(255), primary_key=True),
        sa.Column("shard", sa.Integer(), primary_key=True),
        sa.Column("workflows", sa.BigInteger(), nullable=False),
        sa.Column("steps", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "workflow_rollups",
        sa.Column("grain", sa.String(1), primary_key=True),
        sa.Column("bucket", TS, primary_key=True),
        sa.Column("tenant", sa.String(255), primary_key=True),
        sa.Column("shard", sa.Integer(), primary_key=True),
        sa.Column("workflows", sa.BigInteger(), nullable=False),
    )
    _triggers("workflows", WORKFLOW_BODY)
    op.execute(
        "INSERT INTO workflow_counters SELECT status, coalesce(origin_tenant_id, ''), 0, "
        "count(*), coalesce(sum(total_steps), 0) FROM workflows GROUP BY 1, 2"
    )
    op.execute(
        "INSERT INTO workflow_rollups (bucket, grain, tenant, shard, workflows) "
        "SELECT v.bucket, v.grain, coalesce(w.origin_tenant_id, ''), 0, count(*) "
        "FROM workflows w CROSS JOIN LATERAL (VALUES "
        "(date_trunc('minute', w.created_at), 'm'), (date_trunc('hour', w.created_at), 'h')) "
        "AS v (bucket, grain) WHERE w.created_at >= now() - interval '25 hours' GROUP BY 1, 2, 3"
    )
    op.execute(RECOUNT)
    op.execute(REROLL)
    # Counting retries waiting out their backoff without a scan; the drain estimate's
    # fallback reads the newest running LLM tasks of a queue.
    op.create_index(
        "ix_tasks_retry_wait",
        "tasks",
        ["queue", "next_attempt_at"],
        postgresql_where=sa.text("status = 'QUEUED' AND next_attempt_at IS NOT NULL"),
    )
    op.create_index(
        "ix_tasks_llm_running",
        "tasks",
        ["queue", "started_at"],
        postgresql_where=sa.text("status = 'RUNNING' AND task_type = 'llm'"),
    )
    op.create_index(
        "ix_tasks_llm_completed",
        "tasks",
        ["queue", "completed_at"],
        postgresql_where=sa.text("status = 'COMPLETED' AND task_type = 'llm'"),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_llm_completed", table_name="tasks")
    op.drop_index("ix_tasks_llm_running", table_name="tasks")
    op.drop_index("ix_tasks_retry_wait", table_name="tasks")
    for table in ("tasks", "workflows"):
        for op_name in SOURCES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_counted_{op_name.lower()} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS opsgraph_count_{table}_{op_name.lower()}()")
    op.drop_table("workflow_rollups")
    op.drop_table("workflow_counters")
    op.drop_table("task_rollups")
    op.drop_table("task_counters")
    op.execute("DELETE FROM llm_stats_state WHERE reset_at IS NULL")
    op.alter_column("llm_stats_state", "reset_at", nullable=False)
    # back to 0007's row-level counters
    path = Path(__file__).with_name("0007_task_counters.py")
    spec = importlib.util.spec_from_file_location("opsgraph_migration_0007", path)
    assert spec is not None and spec.loader is not None
    previous = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(previous)
    previous.upgrade()
