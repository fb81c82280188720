"""FastAPI dependencies: everything a route needs comes from the app built by `create_app`."""

from typing import Annotated

from fastapi import Depends, Header, Request

from api.dispatch import Dispatcher
from shared.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_dispatcher(request: Request) -> Dispatcher:
    return request.app.state.dispatcher


SettingsDep = Annotated[Settings, Depends(get_settings)]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]
PinnedVersion = Annotated[
    str | None,
    Header(
        alias="X-Model-Version",
        description="Route this request to a specific model version (409 if none serves it).",
    ),
]
