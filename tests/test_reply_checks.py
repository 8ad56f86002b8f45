"""The checks an LLM reply passes before it becomes a record, on replies a real small model wrote
(SmolLM2-135M-Instruct, read while building them) and on the rewrites they should allow."""

import pytest

from adr.reply_checks import conversation_problem, meaning_problem, piece_problem, rewrite_problem
from adr.rewrite import assembled, rewritable_pieces
from udfs.wordnet import word_bases

VQA = [{"from": "human", "value": "<image>\nIs there a bicycle in the image?\nAnswer the question using a single "
                                  "word or phrase."},
       {"from": "gpt", "value": "Yes"},
       {"from": "human", "value": "How many zebras can be seen in the image?"},
       {"from": "gpt", "value": "There are 3 zebras in the image, grazing next to a tree."}]


def test_only_questions_and_long_answers_are_handed_to_the_model():
    pieces = rewritable_pieces(VQA)
    assert [(p.turn, p.kind, p.text) for p in pieces] == [
        (0, "question", "Is there a bicycle in the image?"),
        (2, "question", "How many zebras can be seen in the image?"),
        (3, "answer", "There are 3 zebras in the image, grazing next to a tree.")]
    new = assembled(VQA, pieces, ["Does the image show a bicycle?", "How many zebras does the image show?",
                                  "The image shows 3 zebras grazing next to a tree."])
    assert new[0]["value"] == ("<image>\nDoes the image show a bicycle?\nAnswer the question using a single word "
                               "or phrase.")  # the instruction line and the image token stay
    assert new[1] == VQA[1] and new[3]["value"].startswith("The image shows 3")


@pytest.mark.parametrize("kind, seed, reply, reason", [
    # what SmolLM2-135M wrote when asked to reword
    ("question", "What is the man holding in his left hand?",
     "The man holding the woman's hand is a classic example of a metaphorical expression.", "not-a-question"),
    ("question", "Is there a bicycle in the image?", "The answer to the question is a bicycle.", "not-a-question"),
    ("question", "Are there both sits and fences in this picture?",
     "What is the number of sits and fences in this picture?", "question-type-changed"),
    ("question", "How many zebras can be seen in the image?", "Sure! How many zebras are there?", "chatty-reply"),
    ("answer", "There are 3 zebras in the image.", "There are three zebras in the image.", "changed-protected-span"),
    ("answer", "The man holds a red umbrella.", "The man, who is walking home from a long day at the office, holds "
     "a bright red umbrella above his head.", "length-out-of-bounds"),
])
def test_a_reply_that_is_not_a_rewording_is_refused(kind, seed, reply, reason):
    assert piece_problem(kind, seed, reply)[0] == reason


@pytest.mark.parametrize("seed, reply, reason", [
    ("How many zebras can be seen in the image?", "How many sheep can be seen in the image?", "changed-meaning"),
    ("What is the plate made of?", "What does the plate have on it?", "changed-meaning"),
    ("Where is the giraffe?", "Where does the giraffe live?", "changed-meaning"),
    ("What is next to the foil?", "What is the next to the foil?", "unchanged"),
    ("What color is the umbrella?", "What color is a umbrella?", "unchanged"),
])
def test_a_rewording_must_say_the_same_thing(seed, reply, reason):
    assert piece_problem("question", seed, reply) is None
    assert meaning_problem(seed, reply, word_bases, {})[0] == reason


@pytest.mark.parametrize("seed, reply, swaps", [
    ("What is the man holding in his left hand?", "In his left hand, what is the man holding?", {}),
    ("How many zebras can be seen in the image?", "In the image, how many zebras can be seen?", {}),
    ("What is the boy holding?", "What is the lad holding?", {"lad": "boy"}),  # an offered, sense-checked synonym
    ("What are the cats sitting on?", "What is the cat sitting on?", {}),
])
def test_a_rewording_that_keeps_every_content_word_passes(seed, reply, swaps):
    assert piece_problem("question", seed, reply) is None
    assert meaning_problem(seed, reply, word_bases, swaps) is None


def test_a_record_keeps_its_short_answers_and_target_and_adds_no_noun():
    seed = VQA[:2]
    new = [{**VQA[0], "value": VQA[0]["value"].replace("Is there a bicycle", "Does the image show a bicycle")},
           VQA[1]]
    support = {"bicycle", "image"}
    assert rewrite_problem(seed, new, "bicycle", {"bicycle", "image"}, support, {"bicycle": frozenset()}) is None
    assert rewrite_problem(seed, [new[0], {"from": "gpt", "value": "No"}], "bicycle", {"bicycle"}, support,
                           {})[0] == "changed-short-answer"
    assert rewrite_problem(seed, seed, "bicycle", {"bicycle"}, support, {})[0] == "unchanged"
    assert rewrite_problem(seed, new, "bicycle", {"bike"}, support, {})[0] == "missing-target"
    assert rewrite_problem(seed, new, "bicycle", {"bicycle", "helmet"}, support, {})[0] == "unsupported-noun"


def test_a_conversation_says_only_what_its_caption_holds():
    caption = "A giraffe eats leaves from a tall tree next to a zebra."
    good = [{"from": "human", "value": "<image>\nWhat is the giraffe eating?"},
            {"from": "gpt", "value": "The giraffe is eating leaves from a tall tree."}]
    assert conversation_problem(caption, good, "giraffe", {"giraffe", "leaf", "tree"},
                                {"giraffe", "leaf", "tree", "zebra"}, 200) is None
    assert conversation_problem(caption, good, "giraffe", {"giraffe", "savanna"},
                                {"giraffe", "leaf", "tree", "zebra"}, 200) == ("unsupported-noun", "savanna")
    assert conversation_problem(caption, good, "zebra", {"giraffe"}, {"giraffe"}, 200)[0] == "missing-target"
    assert conversation_problem(caption, None, "giraffe", set(), set(), 200)[0] == "unparseable-reply"
