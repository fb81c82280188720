"""The bundle signing key, and the signature that makes a bundle's manifest trustworthy.

Training writes `manifest.sig` beside `manifest.json`: `hmac-sha256:` and the hex HMAC-SHA256,
under the bundle signing key, of the manifest file's bytes exactly as written. The manifest
holds the sha256 of every other file of the bundle, so this one signature covers all of it: a
byte changed anywhere, a file added to or dropped from the list, a manifest of another bundle
copied in, and `verify_bundle` refuses the bundle before any of its files is parsed.

Why a file beside the manifest, over its bytes, and not a field inside it computed over the
rest: the bytes are checked before anything parses them, so nothing an unsigned editor wrote
reaches a JSON parser or validator first; and no canonical form is needed, whereas a field would
have to be taken out and the rest re-serialised byte for byte as training did (key order, float
text, escapes, duplicate keys) by every later version of the code.

Why HMAC with a shared secret rather than a public-key signature: the trainer and the workers
belong to the same operator, the standard library has it, and the key is one generated line
(`shared.secrets`). Whoever reads the key can sign, so it is kept in the secrets directory (or
the environment), never beside the bundles, and never in a log, a manifest or a message.
"""

import hashlib
import hmac

from pydantic import SecretStr

from shared.model.manifest import BundleError
from shared.secrets import read_or_create
from shared.settings import Settings

SIGNATURE_FILE = "manifest.sig"
KEY_FILE = "bundle-signing-key"
# A generated key has 43 characters (`secrets.token_urlsafe(32)`); one given in the environment
# must not be a guessable word either.
MIN_KEY_CHARS = 32
_SCHEME = b"hmac-sha256:"


def signing_key(settings: Settings, *, create: bool) -> SecretStr:
    """REALTY_BUNDLE_SIGNING_KEY, else the key file in `secrets_dir`; a missing file is
    generated there when `create` (training) and refused otherwise (workers, `realty predict`):
    a key made up by a reader could only refuse every bundle."""
    key = settings.bundle_signing_key
    if key is None:
        value = read_or_create(settings.secrets_dir, KEY_FILE, create=create)
        if value is None:
            raise BundleError(
                "no bundle signing key: set REALTY_BUNDLE_SIGNING_KEY or put the key that "
                f"signed the bundles in {settings.secrets_dir / KEY_FILE} (training creates it)"
            )
        key = SecretStr(value)
    if len(key.get_secret_value()) < MIN_KEY_CHARS:
        raise BundleError(
            f"the bundle signing key (REALTY_BUNDLE_SIGNING_KEY or {KEY_FILE}) is shorter than "
            f"{MIN_KEY_CHARS} characters"
        )
    return key


def signature(key: SecretStr, manifest: bytes) -> bytes:
    """What `manifest.sig` holds for these manifest bytes."""
    digest = hmac.new(key.get_secret_value().encode(), manifest, hashlib.sha256).hexdigest()
    return _SCHEME + digest.encode() + b"\n"


def authentic(key: SecretStr, manifest: bytes, signed: bytes) -> bool:
    """Whether `signed` (a `manifest.sig`) is this key's signature of `manifest`. Compared in
    constant time, so how long a refusal takes tells a forger nothing about the right value."""
    return hmac.compare_digest(signature(key, manifest).strip(), signed.strip())
