"""API keys (shared/wire/api_keys.py): their form, what is stored of them, roles."""

import pytest

from shared.wire.api_keys import InvalidKeyError, Role, matches, new_key, parse, record_of


def test_a_new_key_parses_into_its_id_and_secret_and_only_its_digest_is_stored():
    key = new_key()
    key_id, secret = parse(key) or ("", "")
    record = record_of(key, "anna.lee", Role.AGENT)
    assert record.key_id == key_id and secret not in record.model_dump_json()
    assert matches(record, secret)
    assert not matches(record, secret[:-1] + ("A" if secret[-1] != "A" else "B"))


@pytest.mark.parametrize(
    "text", ["", "rk_", "Bearer rk_x", "rk_0123456789abcdeg_" + "x" * 43, new_key() + "x"]
)
def test_anything_but_a_key_of_this_service_does_not_parse(text: str):
    assert parse(text) is None


def test_roles_are_ordered_and_named_in_words():
    assert Role.AGENT < Role.BATCH < Role.ADMIN
    assert Role.named("Batch") is Role.BATCH and Role.ADMIN.label == "admin"
    with pytest.raises(InvalidKeyError, match="agent, batch or admin"):
        Role.named("root")


@pytest.mark.parametrize("name", ["", "Anna", "a b", "x" * 65, "../etc"])
def test_key_names_are_plain_words(name: str):
    with pytest.raises(InvalidKeyError, match="key name"):
        record_of(new_key(), name, Role.AGENT)


def test_two_new_keys_differ():
    assert len({new_key() for _ in range(100)}) == 100
