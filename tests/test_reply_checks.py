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
    ("question", "What color is the car?", "What is the color of the car?", "question-type-changed"),
    ("question", "Are there both classics and bikes in this picture?",
     "Are there in this picture are there both classics and bikes?", "garbled-reply"),
    ("question", "what number is shown?", "What number is shown, is what?", "garbled-reply"),
    ("question", "What is the stare made of?", "What is made of is the stare?", "garbled-reply"),
    ("question", "What is the food doing?", "What does the food is doing?", "garbled-reply"),
    ("question", "Where is the dog?", "Where does the dog is?", "garbled-reply"),
    ("question", "How many coaches are there?", "How many coaches do there be?", "garbled-reply"),
    ("answer", "The image shows a pink flower with green leaves.",
     "The scene is a scene of a scene of a scene.", "garbled-reply"),
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
    ("What color is the umbrella?", "What color is this umbrella?", "unchanged"),
    # near-copies a deduplication would remove
    ("How many zebras can be seen in the image?", "In the image, how many zebras can be seen?", "unchanged"),
    ("What color is the device in the image?", "What color is the device?", "unchanged"),
    ("What might happen next in this scene?", "What could happen next in this scene?", "unchanged"),
    ("How many coaches are in the picture?", "How many coaches are there?", "unchanged"),
    ("How much could it possibly cost?", "How much could it cost?", "changed-meaning"),
    # what SmolLM2-135M wrote that only function words told apart
    ("Are there both classics and bikes in this picture?", "Are there either classics or bikes in this picture?",
     "changed-meaning"),
    ("What could be the reason for the group being here?", "What could be the reason for the group?",
     "changed-meaning"),
    ("What is doing a jump?", "What is it doing a jump?", "changed-meaning"),
    # what SmolLM2-135M wrote that kept every word but changed number, order or what a word binds
    ("How many coaches are in the picture?", "How many is a coach?", "changed-meaning"),
    ("What is the tomato made of?", "What is made of a tomato?", "changed-meaning"),
    ("What are the cats sitting on?", "What is the cat sitting on?", "changed-meaning"),
    ("How many children are there?", "How many child are there?", "changed-meaning"),
    ("Is the dog chasing the cat?", "Is the cat chasing the dog?", "changed-meaning"),
    ("Is the man to the left of the woman?", "Is the woman to the left of the man?", "changed-meaning"),
    ("Is the red car next to the blue truck?", "Is the blue car next to the red truck?", "changed-meaning"),
    ("What is the man holding in his left hand?", "What is the left man holding in his hand?", "changed-meaning"),
    ("What is the smiles made of?", "What does the smiles make of?", "changed-meaning"),
    ("Are there both couples and laughs in this picture?", "Are there both couples laughing?", "changed-meaning"),
])
def test_a_rewording_must_say_the_same_thing(seed, reply, reason):
    assert piece_problem("question", seed, reply) is None
    assert meaning_problem(seed, reply, word_bases, {})[0] == reason


@pytest.mark.parametrize("seed, reply, swaps", [
    ("What is the man holding in his left hand?", "In his left hand, what is the man holding?", {}),
    ("What is the boy holding?", "What is the lad holding?", {"lad": "boy"}),  # an offered, sense-checked synonym
    ("Where is the cat sitting?", "Where does the cat sit?", {}),  # the same words, another grammar
    ("Is the game to the left or to the right of the freebie?",  # SmolLM2-135M's, accepted and right
     "Is the game to the right or to the left of the freebie?", {}),
    ("Is the dog lying on the rug next to the sofa?", "Next to the sofa, is the dog lying on the rug?", {}),
    ("Is the man walking his dog in the park?", "In the park, is the man walking his dog?", {}),
])
def test_a_rewording_that_keeps_every_content_word_passes(seed, reply, swaps):
    assert piece_problem("question", seed, reply) is None
    assert meaning_problem(seed, reply, word_bases, swaps) is None


def test_the_models_worked_examples_pass_the_checks_they_teach():
    from adr.prompts import REPHRASE_EXAMPLES

    for kind, examples in REPHRASE_EXAMPLES.items():
        for seed, reply in examples:
            assert piece_problem(kind, seed, reply) is None
            assert meaning_problem(seed, reply, word_bases, {}) is None


def test_an_answer_keeps_its_sentences():
    """SmolLM2-135M's merge of two sentences, the second's subject lost."""
    seed = ("In the image, a photo of a toilet shooting water. This may also indicate that the owner cares "
            "about it.")
    merged = "In the image, a photo of a toilet shooting water, might indicate that the owner cares about it."
    assert piece_problem("answer", seed, merged)[0] == "garbled-reply"
    reordered = "A photo of a toilet shooting water, in the image. This may also indicate that the owner cares about it."
    assert piece_problem("answer", seed, reordered) is None


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


def test_a_piece_no_reply_rewrites_keeps_the_seeds_words_and_the_record_says_so():
    """Through the stage's own steps, with replies SmolLM2-135M wrote: the first question is
    reworded, the second's only reply is word salad, so it stays as the seed has it."""
    from apache_beam.ml.inference.base import PredictionResult

    from pipelines.synthesize import steps
    from udfs.entities import entities_of

    turns = [{"from": "human", "value": "<image>\nWhere is the device sitting?"},
             {"from": "gpt", "value": "Table"},
             {"from": "human", "value": "Are there both classics and devices in this picture?"},
             {"from": "gpt", "value": "Yes"}]
    record = {"image": "a.jpg", "conversations": turns}
    (nouns,) = entities_of([record], ("token",), None)
    seed = steps.Seed("rewrite", 0.1, "k", "i", "a.jpg", {"token": ["device"]}, record, ("token", "device"), None,
                      tuple(nouns["token"]))
    requests = [e for e in steps.rewrite_requests(seed, {}, 10) if isinstance(e, tuple)]
    assert [key[1] for key, _ in requests] == [0, 1]
    replies = ["Where does the device sit?", "Are there in this picture are there both classics and devices?"]
    grouped = [steps.by_candidate((key, PredictionResult(m, (r,)))) for (key, m), r in zip(requests, replies)]
    (out,) = steps.rewritten_record((grouped[0][0], [g[1] for g in grouped]), {"llm": "m"}, {"seed": 1}, 1, None)
    work, record = out
    assert [t["value"] for t in record["conversations"]] == [
        "<image>\nWhere does the device sit?", "Table", turns[2]["value"], "Yes"]
    assert record["adr"]["parameters"]["kept_as_seed"] == [
        {"piece": 1, "reason": "garbled-reply", "reply": replies[1]}]

    echo = [p.text for p in rewritable_pieces(turns)][0]  # the first question, as it was
    both_bad = [steps.by_candidate((key, PredictionResult(m, (r,)))) for (key, m), r in zip(requests, [echo, replies[1]])]
    (refused,) = steps.rewritten_record((both_bad[0][0], [g[1] for g in both_bad]), {"llm": "m"}, {"seed": 1}, 1, None)
    assert refused.tag == steps.FAILED and refused.value["reason"] == "garbled-reply"  # the reason, not the echo


def test_pieces_longer_than_a_reply_can_hold_are_not_handed_to_the_model():
    from adr.rewrite import MAX_PIECE_CHARS, piece_chars

    assert piece_chars(512) == MAX_PIECE_CHARS and piece_chars(40) == 128
    long_answer = [VQA[0], VQA[1], VQA[2], {"from": "gpt", "value": "There are 3 zebras. " * 8}]
    assert [p.turn for p in rewritable_pieces(long_answer)] == [0, 2, 3]
    assert [p.turn for p in rewritable_pieces(long_answer, piece_chars(40))] == [0, 2]
