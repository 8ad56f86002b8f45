import pytest

from adr.errors import ConfigError
from adr.synonyms import choose_replacements, replace_in_conversation, replace_in_text, tail_synonyms
from adr.synthesis import parse_mix, plan_budget, seed_order, synthetic_id


def test_mix_and_budget_plan_sum_exactly():
    assert parse_mix(None) == {"visual": 0.6, "synonym": 0.2, "rewrite": 0.2}
    assert parse_mix("visual=3,synonym=1") == {"visual": 0.75, "synonym": 0.25, "rewrite": 0.0}
    for budget in (0, 1, 2, 7, 83_500, 83_517):
        plan = plan_budget(budget, parse_mix(None))
        assert sum(plan.values()) == budget
    assert plan_budget(10, parse_mix(None)) == {"visual": 6, "synonym": 2, "rewrite": 2}
    with pytest.raises(ConfigError):
        parse_mix("visual=1,dance=1")


def test_seed_order_is_a_seeded_permutation():
    ids = [f"r{i}" for i in range(100)]
    order = seed_order(ids, 42, "visual")
    assert sorted(order) == sorted(ids) and order != ids
    assert order == seed_order(reversed(ids), 42, "visual")
    assert order != seed_order(ids, 43, "visual") and order != seed_order(ids, 42, "synonym")
    assert synthetic_id("visual", "r1", 42) == synthetic_id("visual", "r1", 42) != synthetic_id("synonym", "r1", 42)


def test_tail_synonyms_rarest_first_and_only_tail():
    counts = {"car": 500, "automobile": 3, "auto": 40, "machine": 12}
    assert tail_synonyms("car", ["car", "auto", "automobile", "machine", "motorcar"], counts, tau=31) == [
        "motorcar", "automobile", "machine"]
    assert tail_synonyms("car", ["railcar", "gondola", "car"], {}, tau=31) == ["railcar", "gondola"]
    assert choose_replacements({"car", "zzz"}, lambda n: {"car": ["automobile"]}.get(n, []), counts, 31) == {
        "car": "automobile"}


def test_replacement_keeps_case_plural_and_word_boundaries():
    r = {"dog": "hound", "bus": "autobus"}
    assert replace_in_text("Dogs chase a dog near the buses; hotdog stays.", r) == \
        "Hounds chase a hound near the autobuses; hotdog stays."
    assert replace_in_text("A man and a dog; an apple.", {"man": "adult male", "apple": "pear"}) == \
        "An adult male and a dog; a pear."
    turns = [{"from": "human", "value": "<image>\nWhat is the dog doing?"}, {"from": "gpt", "value": "The dog sleeps."}]
    new, applied = replace_in_conversation(turns, {**r, "image": "icon", "cat": "true cat"})
    assert new[0]["value"] == "<image>\nWhat is the hound doing?" and new[1]["value"] == "The hound sleeps."
    assert applied == {"dog": "hound"}


def test_wordnet_synonym_replacement_on_real_captions(coco):
    from udfs.wordnet import noun_synonyms

    assert "automobile" in noun_synonyms("car") and "motorcar" in noun_synonyms("car")
    assert "railcar" not in noun_synonyms("car") and "railcar" in noun_synonyms("car", senses=3)
    assert noun_synonyms("qwxzv") == ()
    captions, _ = coco
    texts = [a["caption"] for a in captions["annotations"] if a["image_id"] == 139]
    counts = {"table": 900, "woman": 700, "room": 400, "chair": 300}
    replacements = choose_replacements({"table", "woman", "room"}, noun_synonyms, counts, tau=31)
    # real WordNet: every replacement is a listed synonym that is rare in this corpus
    for noun, synonym in replacements.items():
        assert synonym in {s.replace("_", " ").lower() for s in noun_synonyms(noun)}
        assert counts.get(synonym, 0) < 31
    assert replacements["woman"] == "adult female"
    changed = [replace_in_text(t, replacements) for t in texts]
    assert any("adult female" in c for c in changed) and changed != texts
    assert all("woman" not in c.lower().split() for c in changed)
