"""Ray Serve's own floor for the graph's shape: a peer for `/inference` in the same run.

An application of no-op deployments with the hops one extraction makes: a POST through the
same proxy into a FastAPI ingress that reads the JSON body, then one grouped call to an
"encoder" and one to a "recorder" (`app.grouping.Grouped`, as the gateway groups them), each
returning at once. Its req/s divided by `/health`'s is the best `/inference`/`/health` ratio
this graph could reach on the machine if the model, the app's code and the disk were free.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from ray import serve
from ray.serve.handle import DeploymentHandle

from app.grouping import Grouped

ROUTE = "/_floor"
api = FastAPI()


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64)
class NoOp:
    async def many(self, items: list[Any]) -> list[bool]:
        return [True] * len(items)


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64)
@serve.ingress(api)
class FloorIngress:
    def __init__(self, encoder: DeploymentHandle, recorder: DeploymentHandle) -> None:
        self._encoder = Grouped(lambda items: encoder.many.remote(items), overlap_at=32)
        self._recorder = Grouped(lambda items: recorder.many.remote(items))

    @api.post("/")
    async def infer(self, request: Request) -> dict[str, Any]:
        body = await request.json()
        await self._encoder.submit(body)
        await self._recorder.submit(body)
        return {"inference_id": "floor", "result": body.get("schema")}


def floor_app() -> serve.Application:
    return FloorIngress.bind(
        NoOp.options(name="FloorEncoder").bind(), NoOp.options(name="FloorRecorder").bind()
    )
