"""Rate limits as router dependencies: each endpoint group counts on the Limiter (app/admission.py).

Installed per router in app/api/factory.py, so every route of a group is limited without each
route asking. `other` (history, catalog) counts per client IP and needs no key: /v1/models
stays callable without one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request

from app.api.auth import Principal, authenticate
from app.api.state import current


def rate_limited(group: str) -> Callable[..., Awaitable[None]]:
    if group == "other":

        async def by_ip(request: Request) -> None:
            ip = request.client.host if request.client else None
            anonymous = Principal(project_id=None, key_id=None, client_ip=ip)
            await current().admissions.admit_rate(anonymous, group)

        return by_ip

    # Depends(authenticate): FastAPI resolves it once per request, for this and the route.
    async def by_caller(principal: Principal = Depends(authenticate)) -> None:
        await current().admissions.admit_rate(principal, group)

    return by_caller
