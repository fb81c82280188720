"""The scrape credential: what Prometheus presents (`Authorization: Bearer TOKEN`) to read the
API's `/metrics` and the worker pools' metrics port, and what opens nothing else.

Least privilege: an admin key would also let Prometheus (or whoever reads its configuration)
activate versions, pin them and read every batch job. No role of the API keys fits either: each
role may do all that the roles below it may, so a "metrics" role would be a role below agent
that cannot predict, an exception to that rule in every check. So it is a secret of its own:
given (`REALTY_METRICS_TOKEN`, compose's .env) or generated at first start into
`secrets_dir/metrics-token` (`make run`), compared in constant time, never logged.
"""

import hmac

from shared.secrets import read_or_create
from shared.settings import Settings

TOKEN_FILE = "metrics-token"
SCRAPER_NAME = "metrics-scraper"  # the caller's name in the log line of a scrape


def scrape_token(settings: Settings) -> str:
    """The token, read each time: a token rotated in the file applies at the next scrape."""
    if settings.metrics_token is not None:
        return settings.metrics_token.get_secret_value()
    token = read_or_create(settings.secrets_dir, TOKEN_FILE, create=True)
    assert token is not None  # created when missing
    return token


def bearer(authorization: str | None) -> str | None:
    """The credentials of an `Authorization: Bearer …` header, else None."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def is_scrape_token(presented: str, settings: Settings) -> bool:
    return hmac.compare_digest(presented.encode(), scrape_token(settings).encode())
