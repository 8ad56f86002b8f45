"""Prompts of the synthesis models, and parsing of what they answer."""

from __future__ import annotations

import re

from adr.records import IMAGE_TOKEN

CAPTION_PROMPT = "Please describe the image in detail."

# LLaVA's conversation-generation instructions (LLaVA, Liu et al. 2023, Appendix), with the
# answer format the reply parser reads.
CONVERSATION_SYSTEM = """You are an AI visual assistant, and you are seeing a single image. What you see is provided as a detailed description of the image you are looking at. Answer all questions as you are seeing the image.

Design a conversation between you and a person asking about this photo. The answers should be in a tone that a visual AI assistant is seeing the image and answering the question. Ask diverse questions and give corresponding answers.

Include questions asking about the visual content of the image, including the object types, counting the objects, object actions, object locations, relative positions between objects, etc. Only include questions that have definite answers:
(1) one can see the content in the image that the question asks about and can answer confidently;
(2) one can determine confidently from the image that it is not in the image.
Do not ask any question that cannot be answered confidently.

Also include complex questions that are relevant to the content in the image, for example, asking about background knowledge of the objects in the image, asking to discuss about events happening in the image, etc. Again, do not ask about uncertain details. Provide detailed answers when answering complex questions. For example, give detailed examples or reasoning steps to make the content more convincing and well-organized. You can include multiple paragraphs if necessary.

Write every question and answer as
Question:
<the question>
===
Answer:
<the answer>
==="""

EXAMPLES: tuple[tuple[str, str], ...] = (
    ("A red double-decker bus drives down a wet city street at dusk. Pedestrians with umbrellas wait at a "
     "crossing on the left, and a cyclist in a yellow jacket rides beside the bus. Shop windows are lit "
     "along the right side of the street.",
     "Question:\nWhat color is the bus in the image?\n===\nAnswer:\nThe bus is red. It is a double-decker bus.\n===\n"
     "Question:\nHow many cyclists can be seen?\n===\nAnswer:\nThere is one cyclist, wearing a yellow jacket and "
     "riding beside the bus.\n===\n"
     "Question:\nWhy are the pedestrians holding umbrellas?\n===\nAnswer:\nThe street is wet, which suggests it is "
     "raining or has just rained. The pedestrians carry umbrellas to stay dry while they wait to cross, and the "
     "cyclist's bright yellow jacket helps drivers see him in the low light of dusk.\n==="),
    ("A brown dog lies on a blue rug next to a wooden bookshelf. A tennis ball rests between its front paws "
     "and a window behind the dog lets in afternoon sunlight.",
     "Question:\nWhat is the dog lying on?\n===\nAnswer:\nThe dog is lying on a blue rug.\n===\n"
     "Question:\nWhat object is between the dog's front paws?\n===\nAnswer:\nA tennis ball.\n===\n"
     "Question:\nWhat might the dog want to do next?\n===\nAnswer:\nWith a tennis ball held between its paws, the "
     "dog may be waiting for someone to play fetch. Dogs often bring or guard a favourite toy when they want "
     "attention or exercise, so it would likely enjoy having the ball thrown.\n==="),
)


def conversation_messages(caption: str) -> list[dict[str, str]]:
    """Chat messages for the instruction LLM: system, two worked examples, then the caption."""
    messages = [{"role": "system", "content": CONVERSATION_SYSTEM}]
    for example_caption, example_reply in EXAMPLES:
        messages += [{"role": "user", "content": example_caption}, {"role": "assistant", "content": example_reply}]
    messages.append({"role": "user", "content": caption.strip()})
    return messages


_BLOCK = re.compile(r"Question:\s*(?P<q>.+?)\s*===\s*Answer:\s*(?P<a>.+?)\s*(?:===|(?=Question:)|\Z)",
                    re.DOTALL | re.IGNORECASE)


def parse_conversation(reply: str, *, with_image: bool = True) -> list[dict[str, str]] | None:
    """`Question: ... === Answer: ... ===` blocks -> alternating human/gpt turns; None if none parse.

    Exactly one `<image>` placeholder, at the start of the first human turn (any the model wrote
    is removed), when `with_image`.
    """
    turns: list[dict[str, str]] = []
    for match in _BLOCK.finditer(reply):
        question = match.group("q").replace(IMAGE_TOKEN, "").strip()
        answer = match.group("a").replace(IMAGE_TOKEN, "").strip()
        if question and answer:
            turns += [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
    if not turns:
        return None
    if with_image:
        turns[0]["value"] = f"{IMAGE_TOKEN}\n{turns[0]['value']}"
    return turns



# One piece at a time (adr.rewrite): a question line or a long answer, with worked examples that
# keep the kind of question and every word that names something, and change only the grammar and
# the order: what the reply checks accept (tests hold each example to them).
REPHRASE_SYSTEM = {
    "question": "Reword the question. Keep every word that names a thing, a person, a place, a color or a number, "
                "and keep the kind of question (a yes/no question stays a yes/no question). Change only the "
                "order of the words or the grammar. Do not answer it. Reply with the reworded question only.",
    "answer": "Reword the answer. Keep every word that names a thing, a person, a place, a color or a number, "
              "and add nothing. Change only the order of the words or the grammar. Reply with the reworded "
              "answer only.",
}
REPHRASE_EXAMPLES = {
    "question": (("What is the man holding in his left hand?", "In his left hand, what is the man holding?"),
                 ("Is the cat sleeping on the bed?", "Is the cat on the bed sleeping?"),
                 ("Where is the cat sitting?", "Where does the cat sit?"),
                 ("How many zebras are standing in the field?", "How many zebras stand in the field?")),
    "answer": (("The dog is lying on a blue rug next to the sofa.", "Next to the sofa, the dog lies on a blue rug."),
               ("There are 3 zebras grazing in the field.", "3 zebras graze in the field.")),
}


def rephrase_messages(kind: str, text: str, words: list[str]) -> list[dict[str, str]]:
    """Messages asking the LLM to reword one question line or answer (kind), offered tail words."""
    system = REPHRASE_SYSTEM[kind]
    if words:
        system += f" Where one of these words fits the meaning exactly, you may use it: {', '.join(words)}."
    messages = [{"role": "system", "content": system}]
    for before, after in REPHRASE_EXAMPLES[kind]:
        messages += [{"role": "user", "content": before}, {"role": "assistant", "content": after}]
    messages.append({"role": "user", "content": text.strip()})
    return messages
