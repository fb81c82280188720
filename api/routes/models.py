"""Which model versions the service knows, which is active, and how many workers serve each."""

from fastapi import APIRouter

from api.deps import DispatcherDep
from shared import keys
from shared.schemas import ModelInfo

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
                metrics=manifest.metrics,
            )
        )
    return models
