"""The Redis client a worker's consumers run on: the MULTI/EXEC transactions its jobs send at
about the same time (arq's reads as a job starts, its clean-up as one finishes) go to Redis
as one transaction, and each caller gets its own replies.

Why: arq sends two transactions per job, and a process's jobs start and finish in waves (the
jobs one claim returns, the attempts one group commit completes). One transaction in place
of several is a round trip (and a socket write, which dominates the worker's CPU) saved per
job. Merging is safe for these: none WATCHes a key, so a bigger atomic unit only adds
atomicity. WATCHed, non-transactional or script-loading pipelines are sent as they are.

Failures stay each caller's without anything applied twice: a command that fails inside the
merged transaction fails only its caller's (Redis applies the rest, as it would have applied
the other transactions); a transaction Redis refused whole (EXECABORT: nothing applied) is
sent again one by one; a lost connection, when nobody can tell whether it was applied, is
reported to every caller and sent again to none."""

from __future__ import annotations

from typing import Any

from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from app.platform.group_commit import GroupCommit

Stack = list[Any]  # a pipeline's queued commands: (args, options) pairs
Answer = list[Any] | Exception  # a transaction's replies, or why it may not have been applied


class _MergedPipeline(Pipeline):  # type: ignore[misc]
    def __init__(self, merge: GroupCommit[Stack, Answer], *args: Any) -> None:
        super().__init__(*args)
        self._merge = merge

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        if (
            not raise_on_error
            or not self.is_transaction
            or self.watching
            or self.explicit_transaction
            or self.scripts
            or not self.command_stack
        ):
            return await super().execute(raise_on_error)  # type: ignore[no-any-return]
        stack, self.command_stack = self.command_stack, []
        answer = await self._merge(stack)
        if isinstance(answer, Exception):
            raise answer
        self.raise_first_error(stack, answer)  # as its own transaction would
        return answer


class MergedRedis(ArqRedis):
    """An ArqRedis on `redis`'s connection pool whose plain transactions are merged (see the
    module doc); at most `batch` transactions go in one (app/platform/group_commit.py)."""

    def __init__(self, redis: ArqRedis, *, batch: int) -> None:
        super().__init__(
            connection_pool=redis.connection_pool,
            job_serializer=redis.job_serializer,
            job_deserializer=redis.job_deserializer,
            default_queue_name=redis.default_queue_name,
            expires_extra_ms=redis.expires_extra_ms,
        )
        self._merge: GroupCommit[Stack, Answer] = GroupCommit(self._send, max_batch=batch)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return _MergedPipeline(
            self._merge, self.connection_pool, self.response_callbacks, transaction, shard_hint
        )

    async def _send(self, stacks: list[Stack]) -> list[Answer]:
        pipe = super().pipeline(transaction=True)
        for stack in stacks:
            pipe.command_stack.extend(stack)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except ResponseError:
            raise  # refused whole, nothing applied: GroupCommit sends each one alone
        except Exception as exc:
            return [exc] * len(stacks)
        answers: list[Answer] = []
        at = 0
        for stack in stacks:
            answers.append(replies[at : at + len(stack)])
            at += len(stack)
        return answers
