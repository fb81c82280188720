"""Which model versions the service knows, which is active, and switching the active one."""

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException

from api.deps import DispatcherDep, SettingsDep
from shared import keys
from shared.rollout import SWAP_ACTIVE, SWAP_KEYS
from shared.schemas import Activation, ModelInfo

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", response_model=list[ModelInfo])
async def list_models(dispatcher: DispatcherDep) -> list[ModelInfo]:
    active = await dispatcher.redis.get(keys.ACTIVE_VERSION)
    versions = sorted(await dispatcher.redis.smembers(keys.MODELS))
    models = []
    for version in versions:
        manifest = await dispatcher.manifest(version)
        models.append(
            ModelInfo(
                version=version,
                kind=manifest.kind,
                created_at=manifest.created_at,
                active=version == active,
                workers=await dispatcher.live_workers(version),
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
    dispatcher: DispatcherDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Activation:
    """Switch every API replica to `version` at once. Only the pointer moves: start the
    version's workers first, and drain the old ones after (`realty rollout` does all three)."""
    if settings.admin_token and authorization != f"Bearer {settings.admin_token}":
        raise HTTPException(401, "activating a version needs the admin token")
    if await dispatcher.live_workers(version) == 0:
        raise HTTPException(409, f"no warm worker serves {version}; start its workers first")
    previous = await dispatcher.redis.eval(SWAP_ACTIVE, len(SWAP_KEYS), *SWAP_KEYS, version)
    return Activation(active=version, previous=previous)
