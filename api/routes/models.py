"""Which model versions the service knows, which is active, and switching the active one."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from api.auth import AdminCaller, AgentCaller, same_origin
from api.deps import VersionsDep
from api.schemas import Activation, ModelInfo
from shared.model.manifest import VERSION_RE

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", response_model=list[ModelInfo])
async def list_models(_: AgentCaller, versions: VersionsDep) -> list[ModelInfo]:
    active = await versions.active()
    models = []
    for version in await versions.known():
        manifest = await versions.manifest(version)
        models.append(
            ModelInfo(
                version=version,
                kind=manifest.kind,
                created_at=manifest.created_at,
                active=version == active,
                workers=await versions.live_workers(version),
                request_fields=manifest.request_fields,
                zipcodes=manifest.zipcodes,
                as_of_months=manifest.as_of_months,
                metrics=manifest.metrics,
            )
        )
    return models


@router.post(
    "/models/{version}/activate",
    response_model=Activation,
    dependencies=[Depends(same_origin)],
    responses={
        401: {"description": "No API key, or a wrong or revoked one."},
        403: {"description": "Not an admin key, or a cross-site request from a browser."},
        409: {"description": "No warm worker serves this version."},
    },
)
async def activate(
    version: Annotated[str, Path(pattern=VERSION_RE.pattern, examples=["v3"])],
    caller: AdminCaller,
    versions: VersionsDep,
) -> Activation:
    """Switch every API replica to `version` at once. Only the pointer moves: start the
    version's workers first, and drain the old ones after (`realty rollout` does all three)."""
    previous = await versions.activate(version, actor=caller.name)
    return Activation(active=version, previous=previous)
