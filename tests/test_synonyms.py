"""Synonym replacement keeps a record true about its image (real WordNet 3.0, LLaVA-shaped records)."""

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from adr.protected import is_short_answer, keeps_short_answers
from adr.synonyms import STOPLIST, Replacement, plural, replace_in_conversation, replaceable_nouns, safe_synonyms
from tests.conftest import SHARED


@pytest.fixture(scope="module")
def sense():
    from udfs.wordnet import dominant_sense

    return dominant_sense


def EVIDENT(word, synset, context):
    """The rules about the words themselves, with the record's context taken as evidence."""
    return True


def turns(*pairs):
    out = []
    for q, a in pairs:
        out += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
    return out


def choices(record, nouns, counts=None, tau=40):
    """What the synthesis offers for a record (pipelines.synthesize.offers): per noun that may
    change, its best synonym, with EVIDENT as the sense check."""
    from pipelines.synthesize.offers import synonym_choices

    return synonym_choices(record, nouns, counts or {}, tau, fits=EVIDENT)


def made_from(record, choice):
    """The turns of the record synthesised for one offer: that noun replaced (synthesize.steps)."""
    return replace_in_conversation(record, [Replacement(**choice)])


def test_synonyms_share_the_dominant_concrete_sense_one_word_tail_first(sense):
    assert safe_synonyms("car", sense, {"automobile": 3, "auto": 900}, 40, fits=EVIDENT) == [
        ("automobile", "tail"), ("motorcar", "unseen")]  # "auto" is head here; "machine" means another thing
    assert [w for w, _ in safe_synonyms("child", sense, {}, 40, fits=EVIDENT)][:1] == ["kid"]  # most used first
    for noun in ("man", "woman", "person", "picture", "image", "color", "time", "head", "one", "liberty",
                 "side", "top", "table", "sign", "skis"):
        # pronoun-like, media, colour, temporal, positional, abstract or bodily senses; "ski" is no synonym of "skis"
        assert safe_synonyms(noun, sense, {}, 40, fits=EVIDENT) == [], noun
    assert all(w != "chiropteran" for w, _ in safe_synonyms("bat", sense, {}, 40, fits=EVIDENT))  # unattested in English use
    # a synonym mostly used as another part of speech reads as another word: "a minor related book"
    youngster = [w for w, _ in safe_synonyms("youngster", sense, {}, 40, fits=EVIDENT)]
    assert "kid" in youngster and "minor" not in youngster
    assert sense("minor").noun_share < 0.5 < sense("kid").noun_share
    assert safe_synonyms("car", sense, {"motorcar": 0, "automobile": 2, "auto": 1}, 40, fits=EVIDENT)[:2] == [
        ("auto", "tail"), ("automobile", "tail")]  # rarest tail token first


def test_short_answers_options_ocr_and_instructions_never_change(sense):
    record = turns(
        ("<image>\nWhen was this coin made?\nAnswer the question using a single word or phrase.", "Liberty"),
        ("What vehicle is parked near the building?\nA. car\nB. bus\nC. truck\nD. train\n"
         "Answer with the option's letter from the given choices directly.", "A"),
        ("What does the telephone booth say?\nReference OCR token: Telephone, Car, Park\n"
         "Answer the question using a single word or phrase.", "telephone"),
        ("Please provide the bounding box coordinate of the region this sentence describes: car on the left.",
         "[0.12, 0.40, 0.33, 0.71]"),
        ("Describe this picture.", "A quiet street with a car, a coin shop and an old stone building."),
        ("What stands behind the coin shop?",
         "An old stone building stands behind the shop. Its windows are tall and its roof is dark."))
    free = replaceable_nouns(record, ["car", "building", "coin", "liberty", "telephone", "booth", "door", "picture"])
    # car/building/telephone occur in options, OCR tokens or short answers: not replaced anywhere
    assert "car" not in free and "telephone" not in free and "picture" not in free
    assert free == {"building": 3, "coin": 3, "booth": 1}  # questions and long answers may change
    offered = choices(record, ["car", "building", "door", "coin"])
    assert "car" not in {c["noun"] for c in offered}
    for choice in offered:
        for old, changed in zip(record, made_from(record, choice)):
            if old["from"] == "gpt" and is_short_answer("", old["value"]):
                assert changed == old
    assert ("building", "edifice", 3) in [(c["noun"], c["synonym"], c["occurrences"]) for c in offered]
    new = made_from(record, next(c for c in offered if c["noun"] == "building"))
    assert new[1::2][:4] == record[1::2][:4]  # the short answers
    assert new[2]["value"] == record[2]["value"].replace("the building?", "the edifice?")  # options unchanged
    assert new[4:8] == record[4:8] and new[8] == record[8]  # OCR tokens, the box prompt, the instruction
    assert new[9]["value"].endswith("an old stone edifice.") and new[11]["value"].startswith("An old stone edifice")


def test_a_noun_changes_everywhere_or_nowhere_and_names_stay(sense):
    record = turns(
        ("<image>\nWhat is the child holding?", "The child is holding a telephone near the Ford car."),
        ("Is the Telephone Museum open?", "Yes, the Telephone Museum in the background looks open today."))
    free = replaceable_nouns(record, ["child", "telephone", "car", "ford", "museum"])
    assert "telephone" not in free  # a name ("Telephone Museum") blocks it everywhere
    assert "ford" not in free and free.get("child") == 2
    offered = {c["noun"]: c for c in choices(record, ["child", "telephone", "car", "ford"])}
    assert "telephone" not in offered and "ford" not in offered and offered["child"]["synonym"] == "kid"
    new = made_from(record, offered["child"])
    assert new[0]["value"] == "<image>\nWhat is the kid holding?"
    assert "The kid is holding" in new[1]["value"] and "Telephone Museum" in new[3]["value"]
    assert "Ford" in new[1]["value"]


def test_articles_plurals_and_case_agree():
    from adr.synonyms import Replacement

    record = turns(("<image>\nWhy are the cars parked by a car wash?",
                    "Cars line up because a car needs cleaning; an auto-car stays."))
    record[1]["value"] = "Cars line up in the street because a car needs cleaning; the driver cares a lot."
    new = replace_in_conversation(record, [Replacement("car", "automobile", "tail"),
                                           Replacement("driver", "highwayman", "unseen")])
    assert new[0]["value"] == "<image>\nWhy are the automobiles parked by an automobile wash?"
    assert new[1]["value"].startswith("Automobiles line up") and "an automobile needs" in new[1]["value"]
    assert "the highwayman cares a lot" in new[1]["value"]  # "cares" is no plural of "car"
    assert replaceable_nouns(record, ["car"]) == {"car": 4}
    from adr.synonyms import plural
    assert [plural(w) for w in ("highwayman", "bus", "pony", "toy", "kid")] == [
        "highwaymen", "buses", "ponies", "toys", "kids"]


@pytest.mark.needs_shared
def test_on_llava_shaped_records_no_short_answer_or_stoplist_noun_changes(sense):
    """Every record the synonym offers would make from a few thousand generated LLaVA-mix records
    obeys the rules, and is a variant: one noun changed, nothing else but its article."""
    from scripts.make_llava_mix import generate

    records = list(generate(3000, seed=3, data_dir=SHARED))
    made = 0
    for record in records:
        conv = record["conversations"]
        nouns = {w.lower() for t in conv for w in re.findall(r"[A-Za-z]+", t["value"])}
        offered = choices(conv, nouns)
        assert len({c["noun"] for c in offered}) == len(offered)  # one offer per noun
        made += bool(offered)
        for choice in offered:
            noun, synonym = choice["noun"], choice["synonym"]
            assert noun not in STOPLIST and synonym not in STOPLIST and " " not in synonym
            new, question = made_from(conv, choice), ""
            assert new != conv, choice
            for old, changed in zip(conv, new):
                if old["from"] == "human":
                    question = old["value"]
                    assert old["value"].count("<image>") == changed["value"].count("<image>")
                elif is_short_answer(question, old["value"]):
                    assert changed == old, (old, changed)
                gone = Counter(re.findall(r"\w+", old["value"].lower())) - Counter(
                    re.findall(r"\w+", changed["value"].lower()))
                assert set(gone) <= {noun, plural(noun), "a", "an"}, (noun, synonym, old, changed)
    assert made > 100, made


def test_a_rewrite_must_keep_the_turns_and_every_short_answer():
    seed = turns(("<image>\nWhat is on the plate?\nAnswer the question using a single word or phrase.", "Pizza"),
                 ("Why might the man be smiling?",
                  "He is probably enjoying the meal with friends on a relaxed evening at home."))
    same = turns(("<image>\nWhat food is on the dish?", "pizza."),
                 ("Why could he be smiling?", "He seems to enjoy dinner with his friends at home tonight."))
    assert keeps_short_answers(seed, same) is None
    changed = [*same[:1], {"from": "gpt", "value": "A pie"}, *same[2:]]
    assert "short answer 'Pizza'" in keeps_short_answers(seed, changed)
    assert keeps_short_answers(seed, same[:2]) == "2 turns for the seed's 4"


JUDGED = Path(__file__).resolve().parents[1] / "benchmarks" / "judged_swaps.jsonl"


def test_no_swap_judged_wrong_by_reading_is_offered_again_and_most_right_ones_are():
    """benchmarks/judged_swaps.jsonl: swaps read one by one in their sentence (from the issue's
    665K run and the LLaVA-shaped generator), each right or wrong. The offer rule, with the
    sentence's nouns as evidence of the sense, must refuse every wrong one and keep a floor of
    the right ones (a rule that refused everything would pass the first half)."""
    from udfs.wordnet import dominant_sense, sense_fits

    judged = [json.loads(line) for line in JUDGED.read_text().splitlines() if line.strip()]
    assert len(judged) >= 60 and {j["verdict"] for j in judged} == {"right", "wrong"}
    offered = {i: [w for w, _ in safe_synonyms(j["noun"], dominant_sense, {}, 40, context=j["context"], fits=sense_fits)]
               for i, j in enumerate(judged)}
    again = [(j["noun"], j["synonym"], j["text"]) for i, j in enumerate(judged)
             if j["verdict"] == "wrong" and j["synonym"] in offered[i]]
    assert again == []
    right = [i for i, j in enumerate(judged) if j["verdict"] == "right"]
    kept = sum(judged[i]["synonym"] in offered[i] for i in right)
    assert kept >= 15, f"{kept} of {len(right)} right swaps still offered"
    # Without the context's evidence nothing is offered at all.
    assert all(safe_synonyms(j["noun"], dominant_sense, {}, 40, context=j["context"]) == [] for j in judged)


def test_the_sense_is_read_from_the_sentence_the_noun_is_in(sense):
    from udfs.wordnet import sense_fits

    wii = turns(("<image>\nWhat is the man holding?", "He holds a Wii controller and points it at the television."),
                ("Where is he?", "In a living room with a couch, a lamp and a car on the poster."))
    nouns = ["man", "wii", "controller", "television", "living", "room", "couch", "lamp", "car", "poster"]
    from adr.synonyms import sentence_context
    assert sentence_context(wii, "controller", nouns) == {"wii", "television"}
    assert safe_synonyms("controller", sense, {}, 40, context=sentence_context(wii, "controller", nouns),
                         fits=sense_fits) == []
    street = turns(("<image>\nDescribe the scene.", "A red car drives down the street past parked cars and a bus."),)
    context = sentence_context(street, "car", ["car", "street", "bus"])
    assert context == {"street", "bus"}
    assert ("automobile", "unseen") in safe_synonyms("car", sense, {}, 40, context=context, fits=sense_fits)
    assert not sense_fits("car", "car.n.01", ())  # no context, no evidence
