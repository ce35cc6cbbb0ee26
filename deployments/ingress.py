"""HTTP ingress deployment: the FastAPI app, wired to the downstream deployment handles.

Kept light to start: nothing it imports loads duckdb or pyarrow (history reads load them on
the first read; tests/unit/test_ingress_imports.py checks).
"""

from __future__ import annotations

from ray import serve
from ray.serve.handle import DeploymentHandle

from app.admission import Admissions
from app.api.auth import Authenticator, load_keys
from app.api.factory import create_api
from app.api.state import ServerState, install
from app.config import AuthConfig, LimitsConfig, QuotasConfig
from app.embedding_gateway import EmbeddingGateway
from app.gateway import InferenceGateway
from app.history.client import HistoryClient

api = create_api()


@serve.ingress(api)
class Ingress:
    def __init__(
        self,
        resolver: DeploymentHandle,
        encoder: DeploymentHandle,
        decoders: dict[str, DeploymentHandle],
        recorder: DeploymentHandle,
        limiter: DeploymentHandle,
        auth: AuthConfig,
        limits: LimitsConfig,
        quotas: QuotasConfig,
        gliner2_model: str,
        embedder: DeploymentHandle | None = None,
    ) -> None:
        admissions = Admissions(limiter, quotas)
        gateway = InferenceGateway(resolver, encoder, decoders, recorder, limits, admissions)
        install(
            ServerState(
                gateway=gateway,
                authenticator=Authenticator(load_keys(auth)),
                limits=limits,
                admissions=admissions,
                gliner2_model=gliner2_model,
                embeddings=EmbeddingGateway(gateway, embedder),
                history=HistoryClient(gateway.history),
            )
        )
