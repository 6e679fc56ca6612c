"""Task counters per (queue, status, tenant) with token and cost sums, kept by a trigger in the
same transaction as every change to a task, so figures such as /metrics read a few rows
instead of scanning the tasks table. Rows are sharded by backend so concurrent writers rarely
touch the same counter row; readers sum the shards.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE FUNCTION opsgraph_count_task() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  shard smallint := pg_backend_pid() % 64;
  first_is_old boolean;
BEGIN
  -- Apply the two changes in one global order (by status, then queue) so two backends that
  -- share a shard never lock the same pair of counter rows in opposite orders.
  IF TG_OP = 'UPDATE' THEN
    first_is_old := (OLD.status, OLD.queue) <= (NEW.status, NEW.queue);
  END IF;
  IF TG_OP = 'UPDATE' AND first_is_old THEN
    PERFORM opsgraph_bump(OLD.queue, OLD.status, OLD.origin_tenant_id, shard, -1,
      -OLD.input_tokens, -OLD.output_tokens, -OLD.cost_usd);
    PERFORM opsgraph_bump(NEW.queue, NEW.status, NEW.origin_tenant_id, shard, 1,
      NEW.input_tokens, NEW.output_tokens, NEW.cost_usd);
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM opsgraph_bump(NEW.queue, NEW.status, NEW.origin_tenant_id, shard, 1,
      NEW.input_tokens, NEW.output_tokens, NEW.cost_usd);
    PERFORM opsgraph_bump(OLD.queue, OLD.status, OLD.origin_tenant_id, shard, -1,
      -OLD.input_tokens, -OLD.output_tokens, -OLD.cost_usd);
  ELSIF TG_OP = 'INSERT' THEN
    PERFORM opsgraph_bump(NEW.queue, NEW.status, NEW.origin_tenant_id, shard, 1,
      NEW.input_tokens, NEW.output_tokens, NEW.cost_usd);
  ELSE
    PERFORM opsgraph_bump(OLD.queue, OLD.status, OLD.origin_tenant_id, shard, -1,
      -OLD.input_tokens, -OLD.output_tokens, -OLD.cost_usd);
  END IF;
  RETURN NULL;
END $$;
"""

BUMP = """
CREATE FUNCTION opsgraph_bump(q text, st text, tenant text, shard smallint, n bigint,
  tin bigint, tout bigint, cost double precision) RETURNS void LANGUAGE sql AS $$
  INSERT INTO task_counters AS c (queue, status, tenant, shard, tasks, input_tokens,
    output_tokens, cost_usd)
  VALUES (q, st, coalesce(tenant, ''), shard, n, tin, tout, cost)
  ON CONFLICT (queue, status, tenant, shard) DO UPDATE SET
    tasks = c.tasks + EXCLUDED.tasks,
    input_tokens = c.input_tokens + EXCLUDED.input_tokens,
    output_tokens = c.output_tokens + EXCLUDED.output_tokens,
    cost_usd = c.cost_usd + EXCLUDED.cost_usd;
$$;
"""


def upgrade() -> None:
    op.create_table(
        "task_counters",
        sa.Column("queue", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("tenant", sa.String(255), primary_key=True),  # '' for no tenant
        sa.Column("shard", sa.SmallInteger(), primary_key=True),
        sa.Column("tasks", sa.BigInteger(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
    )
    op.execute(BUMP)
    op.execute(FUNCTION)
    op.execute(
        "CREATE TRIGGER tasks_counted AFTER INSERT OR DELETE ON tasks "
        "FOR EACH ROW EXECUTE FUNCTION opsgraph_count_task()"
    )
    op.execute(
        "CREATE TRIGGER tasks_recounted "
        "AFTER UPDATE OF status, queue, origin_tenant_id, input_tokens, output_tokens, cost_usd "
        "ON tasks FOR EACH ROW WHEN ("
        "OLD.status IS DISTINCT FROM NEW.status OR OLD.queue IS DISTINCT FROM NEW.queue "
        "OR OLD.origin_tenant_id IS DISTINCT FROM NEW.origin_tenant_id "
        "OR OLD.input_tokens IS DISTINCT FROM NEW.input_tokens "
        "OR OLD.output_tokens IS DISTINCT FROM NEW.output_tokens "
        "OR OLD.cost_usd IS DISTINCT FROM NEW.cost_usd) "
        "EXECUTE FUNCTION opsgraph_count_task()"
    )
    # Existing tasks are counted once, into shard 0.
    op.execute(
        "INSERT INTO task_counters SELECT queue, status, coalesce(origin_tenant_id, ''), 0, "
        "count(*), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), "
        "coalesce(sum(cost_usd), 0) FROM tasks GROUP BY 1, 2, 3"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS tasks_recounted ON tasks")
    op.execute("DROP TRIGGER IF EXISTS tasks_counted ON tasks")
    op.execute("DROP FUNCTION IF EXISTS opsgraph_count_task()")
    op.execute("DROP FUNCTION IF EXISTS opsgraph_bump(text, text, text, smallint, bigint, bigint, bigint, double precision)")
    op.drop_table("task_counters")
