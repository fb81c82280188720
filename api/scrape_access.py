"""Who may read `/metrics`: Prometheus with the scrape token (shared/scrape_token.py), or an
admin key, as before. Any other credential is refused: the token opens this route only."""

from typing import Annotated

from fastapi import Depends, Request

from api.access_log import KEY_NAME_SCOPE_KEY
from api.auth import require
from api.deps import services_of
from api.errors import UnauthorizedError
from shared.scrape_token import SCRAPER_NAME, bearer, is_scrape_token
from shared.wire.api_keys import Role, parse

_admin = require(Role.ADMIN)


async def metrics_reader(request: Request) -> None:
    presented = bearer(request.headers.get("authorization"))
    if presented is None or parse(presented) is not None:  # none, or an API key: admins only
        await _admin(request)
        return
    if not is_scrape_token(presented, services_of(request).settings):
        raise UnauthorizedError("the scrape token (or the API key) is wrong")
    request.scope[KEY_NAME_SCOPE_KEY] = SCRAPER_NAME


MetricsReader = Annotated[None, Depends(metrics_reader)]
