"""The console under load: with the Tasks view open in Chromium (Playwright, Debian's
chromium), tasks change at `--rate` changes a minute for `--seconds` (each task is submitted,
then cancelled: two changes, both on a queue no worker reads). Measured in the same run:

- commit → row on screen: from a change's commit (the task's `updatedAt`, written just before
  commit) to the moment the row shows that status (a MutationObserver in the page timestamps
  it); p50/p95/max;
- the baseline: the same subscription read by a bare graphql-transport-ws client (Python
  `websockets`), commit → message arrival; the console's figures are reported as ratios to it;
- the main thread: long tasks (PerformanceObserver `longtask`): how many, the longest; the
  budget is none over 200 ms;
- the page's memory: JS heap and DOM nodes (Chrome DevTools Protocol metrics) after the warm-up
  and at the end: a live list keeps a window of rows, so neither may keep growing.

    python -m bench.console [--rate 2000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import time
from datetime import datetime
from typing import Any

import httpx
import websockets

from bench.harness import fresh_stores, serve

QUEUE = "bench-console"
SUBMIT = (
    'mutation($n: Int!) { submitTask(input: {taskType: "echo", queue: "' + QUEUE + '",'
    " input: {n: $n}}) { task { id status updatedAt } } }"
)
CANCEL = "mutation($id: UUID!) { cancelTask(input: {id: $id}) { task { id status updatedAt } } }"
SUBSCRIPTION = 'subscription { taskUpdated(queue: "' + QUEUE + '") { id status updatedAt } }'

# installed before the console's own script: timestamps each (task, status) the moment a row
# shows it, and records the main thread's long tasks
PROBE = """
window.__seen = {};
window.__long = [];
new PerformanceObserver(function (list) {
  list.getEntries().forEach(function (e) { window.__long.push(e.duration); });
}).observe({ type: "longtask", buffered: true });
document.addEventListener("DOMContentLoaded", function () {
  new MutationObserver(function () {
    var now = performance.timeOrigin + performance.now();
    document.querySelectorAll("#task-rows tr[data-task]").forEach(function (tr) {
      var st = tr.querySelector(".st");
      var key = tr.getAttribute("data-task") + " " + (st ? st.textContent : "");
      if (!(key in window.__seen)) window.__seen[key] = now;
    });
  }).observe(document.body, { childList: true, subtree: true, characterData: true });
});
"""


def _ms(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp() * 1000


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _bare(base: str, token: str, arrivals: dict[str, float], ready: asyncio.Event) -> None:
    url = base.replace("http", "ws", 1) + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        auth = {"Authorization": f"Bearer {token}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": auth}))
        await ws.recv()
        subscribe = {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}
        await ws.send(json.dumps(subscribe))
        ready.set()
        async for raw in ws:
            now = time.time() * 1000
            message = json.loads(raw)
            if message.get("type") == "next":
                t = message["payload"]["data"]["taskUpdated"]
                arrivals.setdefault(f"{t['id']} {t['status']}", now)


async def _metrics(cdp: Any) -> dict[str, float]:
    found = await cdp.send("Performance.getMetrics")
    return {m["name"]: m["value"] for m in found["metrics"]}


def main(rate: int, seconds: float) -> dict[str, Any]:
    chromium = os.environ.get("OPSGRAPH_CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        raise SystemExit("bench.console needs Chromium (apt-get install chromium)")
    with fresh_stores() as (stores, folder):
        stack = serve(stores, folder)
        try:
            return asyncio.run(measure(stack, stores.redis_url, chromium, rate, seconds))
        finally:
            stack.proc.stop()


async def measure(
    stack: Any, redis_url: str, chromium: str, rate: int, seconds: float
) -> dict[str, Any]:
    import redis
    from playwright.async_api import async_playwright

    from app.console.codes import mint

    token = stack.token("platform_admin")
    # the console signs in with a one-time code, as from `opsgraph dev`'s banner
    code = mint(redis.Redis.from_url(redis_url), token, ttl_seconds=300)
    commits: dict[str, float] = {}
    bare: dict[str, float] = {}
    ready = asyncio.Event()
    listener = asyncio.create_task(_bare(stack.base, token, bare, ready))
    await ready.wait()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        page = await context.new_page()
        await page.add_init_script(PROBE)
        cdp = await page.context.new_cdp_session(page)
        await cdp.send("Performance.enable")
        await page.goto(f"{stack.base}/console#code={code}")
        await page.wait_for_selector('main[data-ready="overview"]', timeout=30_000)
        await page.get_by_role("link", name="Tasks", exact=True).click()
        await page.wait_for_selector('main[data-ready="tasks"]', timeout=30_000)
        await asyncio.sleep(1)
        interval = 60.0 / rate  # seconds between two changes
        changes = int(rate * seconds / 60)
        async with httpx.AsyncClient(
            base_url=stack.base, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:

            async def change(query: str, variables: dict[str, Any]) -> str:
                sent = {"query": query, "variables": variables}
                body = (await http.post("/graphql", json=sent)).json()
                task = next(iter(body["data"].values()))["task"]
                commits[f"{task['id']} {task['status']}"] = _ms(task["updatedAt"])
                return str(task["id"])

            started = time.monotonic()
            warm: dict[str, float] = {}
            pending: list[str] = []
            for n in range(changes):
                due = started + n * interval
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if n % 2 == 0:
                    pending.append(await change(SUBMIT, {"n": n}))
                else:
                    await change(CANCEL, {"id": pending.pop(0)})
                if not warm and time.monotonic() - started > min(10.0, seconds / 4):
                    warm = await _metrics(cdp)
            elapsed = time.monotonic() - started
        await asyncio.sleep(2)  # the last changes reach the page
        end = await _metrics(cdp)
        seen: dict[str, float] = await page.evaluate("window.__seen")
        long_tasks: list[float] = await page.evaluate("window.__long")
        rows = await page.locator("#task-rows tr").count()
        await browser.close()
    listener.cancel()
    page_lat = [seen[k] - c for k, c in commits.items() if k in seen]
    bare_lat = [bare[k] - c for k, c in commits.items() if k in bare]
    # only the first page grows live and keeps a window of rows: changes to rows that left the
    # window are not drawn, so the console's sample is the changes it showed
    figures = {
        "changes": len(commits),
        "rate_per_minute": round(len(commits) / elapsed * 60),
        "seconds": round(elapsed, 1),
        "shown": len(page_lat),
        "page_p50_ms": round(_pct(page_lat, 0.5), 1),
        "page_p95_ms": round(_pct(page_lat, 0.95), 1),
        "page_max_ms": round(max(page_lat), 1) if page_lat else None,
        "bare_p50_ms": round(_pct(bare_lat, 0.5), 1),
        "bare_p95_ms": round(_pct(bare_lat, 0.95), 1),
        "p95_ratio_to_bare": round(_pct(page_lat, 0.95) / max(_pct(bare_lat, 0.95), 0.1), 2),
        "long_tasks": len(long_tasks),
        "long_tasks_over_200ms": sum(1 for d in long_tasks if d > 200),
        "longest_task_ms": round(max(long_tasks), 1) if long_tasks else 0.0,
        "heap_mb_warm": round(warm.get("JSHeapUsedSize", 0) / 1_048_576, 1),
        "heap_mb_end": round(end.get("JSHeapUsedSize", 0) / 1_048_576, 1),
        "dom_nodes_warm": int(warm.get("Nodes", 0)),
        "dom_nodes_end": int(end.get("Nodes", 0)),
        "rows_in_window": rows,
    }
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=2000, help="task changes a minute")
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    result = main(args.rate, args.seconds)
    print(f"{'figure':<24}{'value':>12}")
    for key, value in result.items():
        print(f"{key:<24}{value!s:>12}")
    print(
        f"budget: commit→row p95 ≤ 500 ms: {'met' if result['page_p95_ms'] <= 500 else 'MISSED'};"
        f" long tasks over 200 ms: {result['long_tasks_over_200ms']} (budget 0)"
    )
    print(json.dumps(result))
