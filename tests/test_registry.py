import pytest

from adr.entities.registry import ALL, PERSPECTIVES, resolve, tail_shares
from adr.errors import ConfigError


def test_registered_perspectives_are_the_four_of_the_spec():
    assert ALL == ("token", "object", "cooccurrence", "interrogation")
    assert [p.code for p in PERSPECTIVES.values()] == ["T", "O", "C", "W"]
    assert {n: p.tail_share for n, p in PERSPECTIVES.items()} == {
        "token": 0.9, "object": 0.9, "cooccurrence": 0.75, "interrogation": 0.9}
    assert [n for n, p in PERSPECTIVES.items() if p.needs_tagger] == ["token"]


def test_resolve_accepts_names_and_codes_in_registry_order():
    assert resolve("W,token") == ("token", "interrogation")
    assert resolve(None) == ALL
    with pytest.raises(ConfigError, match="unknown perspective 'colour'"):
        resolve("token,colour")


def test_tail_shares_override_defaults():
    assert tail_shares("object=0.8", ("token", "object")) == {"token": 0.9, "object": 0.8}
    with pytest.raises(ConfigError):
        tail_shares("token=1.5", ("token",))
