from adr.prompts import EXAMPLES, REPHRASE_EXAMPLES, conversation_messages, parse_conversation, rephrase_messages

# A reply as LLaVA's GPT-4 conversations were written, including a stray <image> and a
# missing final separator.
REPLY = """Question:
What type of vehicle is shown in the image?
===
Answer:
The image shows a <image> black sport utility vehicle (SUV) parked in an underground garage.
===
Question:
How many people are standing near the vehicle?
===
Answer:
There are three people standing near the SUV, loading luggage into it.
===
Question:
What challenges might these people face?
===
Answer:
They may have trouble fitting all of the luggage, since there are several suitcases and backpacks.
Careful packing, or leaving some items behind, would help."""


def test_parse_turns_alternate_with_one_image_token_first():
    turns = parse_conversation(REPLY)
    assert [t["from"] for t in turns] == ["human", "gpt"] * 3
    assert turns[0]["value"] == "<image>\nWhat type of vehicle is shown in the image?"
    assert sum(t["value"].count("<image>") for t in turns) == 1
    assert turns[5]["value"].endswith("would help.")
    assert "\n" in turns[5]["value"]


def test_parse_the_worked_examples_and_reject_prose():
    for _, reply in EXAMPLES:
        assert len(parse_conversation(reply)) == 6
    assert parse_conversation("I'm sorry, I can't see the image.") is None
    assert parse_conversation("Question:\n===\nAnswer:\n===") is None
    assert parse_conversation(REPLY, with_image=False)[0]["value"].startswith("What type")


def test_messages_carry_the_instructions_examples_and_caption():
    messages = conversation_messages("  A cat on a sofa. ")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert "definite answers" in messages[0]["content"] and messages[-1]["content"] == "A cat on a sofa."
    rephrase = rephrase_messages("question", " What is on the table? ", ["automobile", "baggage"])
    assert "automobile, baggage" in rephrase[0]["content"] and rephrase[-1] == {"role": "user",
                                                                                "content": "What is on the table?"}
    assert [m["role"] for m in rephrase] == ["system"] + ["user", "assistant"] * len(REPHRASE_EXAMPLES["question"]) + ["user"]
