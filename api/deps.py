"""FastAPI dependencies: everything a route needs comes from the app built by `create_app`.

All are `async def` although none awaits: FastAPI runs a plain `def` dependency in a thread
pool, and two thread hops per request were 14 % of the API's CPU under load (py-spy)."""

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from api.dispatch import Dispatcher
from shared.settings import Settings


async def app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_dispatcher(request: Request) -> Dispatcher:
    return request.app.state.dispatcher


SettingsDep = Annotated[Settings, Depends(app_settings)]


async def require_json(request: Request) -> None:
    """A house is a JSON object; say so plainly instead of failing to parse something else."""
    content_type = request.headers.get("content-type", "application/json")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise HTTPException(415, f"send the house as application/json, not {content_type!r}")


DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]
PinnedVersion = Annotated[
    str | None,
    Header(
        alias="X-Model-Version",
        description="Route this request to a specific model version (409 if none serves it).",
    ),
]
