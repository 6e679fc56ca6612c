"""examples/generation (issue 31): seed 001's GENERATION tasks as a user's own package, loaded
by a real worker, with their service requests and media served through seed 001's routes."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.client import GraphQLClient
from tests.conftest import wait_for_status
from tests.processes import Proc
from tests.receiver import LocalServer
from tests.test_own_task_types import submit, types_served
from tests.waiting import wait_for

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "generation"


class ImageProvider(LocalServer):
    """An image API: answers a POST of {"prompt", "width", "height"} with a PNG of that size."""

    def __init__(self) -> None:
        async def images(request: Request) -> Response:
            body = await request.json()
            self.prompts.append(body["prompt"])
            out = io.BytesIO()
            Image.new("RGB", (body["width"], body["height"]), (9, 9, 9)).save(out, "PNG")
            return Response(out.getvalue(), media_type="image/png")

        super().__init__(Starlette(routes=[Route("/v1/images", images, methods=["POST"])]))
        self.prompts: list[str] = []


@pytest.fixture
async def image_provider() -> AsyncIterator[ImageProvider]:
    async with ImageProvider() as server:
        yield server


@pytest.fixture
def generation_worker(spawn_worker: Callable[..., Proc]) -> Callable[..., Proc]:
    def start(**env: str) -> Proc:
        return spawn_worker(
            "worker-generation",
            "",
            4,
            args=["--app", "generation_tasks", "--app-dir", str(EXAMPLE)],
            **env,
        )

    return start


async def test_generation_stores_its_image_and_lists_it_as_media(
    admin: GraphQLClient, generation_worker: Callable[..., Proc], image_provider: ImageProvider
) -> None:
    # given the example's worker, calling an image provider over HTTP
    generation_worker(GENERATION_API_URL=image_provider.url + "/v1/images")
    await types_served(admin, "GENERATION", "thumbnail")
    payload = await submit(
        admin,
        taskType="GENERATION",
        input={
            "prompt": "a lighthouse",
            "width": 64,
            "height": 48,
            "base_image_url": "https://x/b.png",
        },
    )
    assert payload["errors"] == []
    task_id = payload["task"]["id"]
    done = await wait_for_status(admin, task_id, {"COMPLETED", "FAILED"})
    assert done["status"] == "COMPLETED", done["errors"]
    assert image_provider.prompts == ["a lighthouse"]

    # seed 001's detail: the task type in its words, the provider call in service_requests
    detail = (await admin.http.get(f"/api/v1/monitoring/tasks/{task_id}")).json()
    assert detail["task_type"] == "GENERATION" and detail["status"] == "COMPLETED"
    [call] = detail["service_requests"]
    assert (call["provider"], call["endpoint"], call["status"]) == ("http", "/v1/images", 200)
    assert (call["width"], call["height"]) == (64, 48)

    # seed 001's media: the base image as an input, the stored result as an output
    media = (await admin.http.get(f"/api/v1/monitoring/tasks/{task_id}/media")).json()
    assert media["inputs"] == [
        {"name": "base_image", "path": "", "url": "https://x/b.png", "media_type": "image"}
    ]
    [output] = media["outputs"]
    assert output["name"] == "result_image" and output["path"] == f"tasks/{task_id}/result.png"
    assert output["url"] == f"/api/v1/monitoring/tasks/{task_id}/media/result_image"
    image = await admin.http.get(output["url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (64, 48)
    missing = await admin.http.get(f"/api/v1/monitoring/tasks/{task_id}/media/base_image")
    assert missing.status_code == 404


async def test_a_workflow_generates_then_makes_a_thumbnail(
    admin: GraphQLClient, generation_worker: Callable[..., Proc]
) -> None:
    # given the example's worker with no provider configured: it draws the image itself
    generation_worker()
    await types_served(admin, "GENERATION", "thumbnail")
    created = await admin.data(
        "CreateWorkflow",
        input={
            "name": "generate and thumbnail",
            "steps": [
                {
                    "stepId": "generate",
                    "taskType": "GENERATION",
                    "input": {"prompt": "a lighthouse at dusk", "width": 640, "height": 480},
                },
                {
                    "stepId": "thumbnail",
                    "taskType": "thumbnail",
                    "dependencies": ["generate"],
                    "input": {"size": 96},
                    "inputMappings": [
                        {"from_step": "generate", "path": "image_file", "to": "image_file"}
                    ],
                },
            ],
        },
    )
    workflow_id = created["createWorkflow"]["workflow"]["id"]
    done = await wait_for(
        lambda: admin.data("Workflow", id=workflow_id),
        until=lambda d: d["workflow"]["status"] in ("COMPLETED", "FAILED"),
        what="the workflow to finish",
    )
    assert done["workflow"]["status"] == "COMPLETED"
    steps = {s["stepId"]: s for s in done["workflow"]["steps"]}
    assert steps["generate"]["result"]["provider"] == "simulated"
    assert (steps["thumbnail"]["result"]["width"], steps["thumbnail"]["result"]["height"]) == (
        96,
        72,
    )
