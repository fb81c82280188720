"""`realty db upgrade` gives PostgreSQL a password as its SCRAM-SHA-256 verifier, never in
clear: checked against the exchange of RFC 7677 (user "user", password "pencil"), the
server's signature and the client's proof of which only the right verifier reproduces."""

import base64
import hashlib
import hmac

from shared.records.migrate import scram_verifier

SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
NONCE = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
AUTH_MESSAGE = (
    f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r={NONCE}"
).encode()
CLIENT_PROOF = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
SERVER_SIGNATURE = base64.b64decode("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")


def keys(verifier: str) -> tuple[bytes, bytes]:
    stored, server = verifier.split("$")[2].split(":")
    return base64.b64decode(stored), base64.b64decode(server)


def test_the_verifier_has_postgresql_s_format_with_the_salt_and_iterations():
    verifier = scram_verifier("pencil", salt=SALT)
    assert verifier.startswith("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$")


def test_its_server_key_signs_the_rfc_exchange_as_the_rfc_says():
    _, server_key = keys(scram_verifier("pencil", salt=SALT))
    assert hmac.digest(server_key, AUTH_MESSAGE, "sha256") == SERVER_SIGNATURE


def test_its_stored_key_accepts_the_rfc_client_s_proof_and_not_another_password_s():
    for secret, accepted in (("pencil", True), ("pencil2", False)):
        stored_key, _ = keys(scram_verifier(secret, salt=SALT))
        signature = hmac.digest(stored_key, AUTH_MESSAGE, "sha256")
        client_key = bytes(a ^ b for a, b in zip(CLIENT_PROOF, signature, strict=True))
        assert (hashlib.sha256(client_key).digest() == stored_key) is accepted


def test_each_verifier_has_a_salt_of_its_own():
    assert scram_verifier("pencil") != scram_verifier("pencil")
