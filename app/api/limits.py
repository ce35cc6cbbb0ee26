"""Rate limits as router dependencies: each endpoint group counts on the Limiter (app/admission.py).

Installed per router in app/api/factory.py, so every route of a group is limited without each
route asking. `other` (history, catalog) counts per client IP and needs no key: /v1/models
stays callable without one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from app.api.auth import Principal
from app.api.state import current


def rate_limited(group: str) -> Callable[[Request], Awaitable[None]]:
    async def admit(request: Request) -> None:
        state = current()
        if group == "other":
            principal = Principal(
                project_id=None,
                key_id=None,
                client_ip=request.client.host if request.client else None,
            )
        else:
            principal = state.authenticator(request)
        await state.admissions.admit_rate(principal, group)

    return admit
