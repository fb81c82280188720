"""Which model versions the service knows, which is active, and switching the active one."""

from typing import Annotated

from fastapi import APIRouter, Header

from api.deps import SettingsDep, VersionsDep
from api.errors import UnauthorizedError
from api.schemas import Activation, ModelInfo

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", response_model=list[ModelInfo])
async def list_models(versions: VersionsDep) -> list[ModelInfo]:
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
                metrics=manifest.metrics,
            )
        )
    return models


@router.post(
    "/models/{version}/activate",
    response_model=Activation,
    responses={
        401: {"description": "Missing or wrong admin token (when REALTY_ADMIN_TOKEN is set)."},
        409: {"description": "No warm worker serves this version."},
    },
)
async def activate(
    version: str,
    versions: VersionsDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Activation:
    """Switch every API replica to `version` at once. Only the pointer moves: start the
    version's workers first, and drain the old ones after (`realty rollout` does all three)."""
    if settings.admin_token and authorization != f"Bearer {settings.admin_token}":
        raise UnauthorizedError("activating a version needs the admin token")
    previous = await versions.activate(version)
    return Activation(active=version, previous=previous)
