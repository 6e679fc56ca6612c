"""An image found in a camera's folder becomes a detection task, once per content hash."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import CameraImage, Task
from app.services.pipeline.config import config_of
from app.services.tasks import submissions as task_submissions
from app.services.tasks.specs import TaskSpec


async def register_image(
    *,
    session: AsyncSession,
    camera_id: str,
    file_path: str,
    file_hash: str,
    captured_at: datetime,
) -> Task | None:
    """Write the detection task for a new image; None when this content was seen before
    (a restart rescanning the folder, or the same picture uploaded twice)."""
    config = config_of(session)
    claimed = await session.execute(
        insert(CameraImage)
        .values(
            file_hash=file_hash,
            camera_id=camera_id,
            file_path=file_path,
            task_id=uuid.uuid4(),  # replaced below by the task's id
            seen_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["file_hash"])
        .returning(CameraImage.file_hash)
    )
    if claimed.scalar_one_or_none() is None:
        return None
    task = await task_submissions.submit_task(
        session=session,
        spec=TaskSpec(
            task_type="detection",
            queue=config.detection_queue,
            input={
                "camera_id": camera_id,
                "file_path": file_path,
                "file_hash": file_hash,
                "timestamp": captured_at.isoformat(),
            },
            origin_instance=f"camera:{camera_id}",
            origin_reference=file_hash,
            max_retries=config.max_retries,
            system=True,
        ),
        defaults=config.task_defaults,
    )
    await session.execute(
        update(CameraImage).where(CameraImage.file_hash == file_hash).values(task_id=task.id)
    )
    return task
