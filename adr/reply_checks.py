"""Checks an LLM's reply passes before it becomes a training record.

The model is an untrusted writer: a small one answers a question instead of rewording it, turns
a yes/no question into a "what" question, swaps the zebras for sheep or opens with "Sure! Here
is...". Each check names what it refuses (a reason, with a detail), so a user can read in
failed/ why every reply was not used. Pure functions: the nouns come from the statistics'
tagger and the related words from WordNet, computed by the caller.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterable

from adr.entities.interrogation import CATCH_ALL, INSTRUCTION_VERBS, turn_types
from adr.protected import keeps_short_answers

UNPARSEABLE = "unparseable-reply"
CHATTY = "chatty-reply"
NOT_A_QUESTION = "not-a-question"
QUESTION_TYPE = "question-type-changed"
PROTECTED = "changed-protected-span"
SHORT_ANSWER = "changed-short-answer"
MISSING_TARGET = "missing-target"
UNSUPPORTED = "unsupported-noun"
LENGTH = "length-out-of-bounds"
UNCHANGED = "unchanged"
GARBLED = "garbled-reply"
DROPPED = "dropped-noun"
CHANGED_MEANING = "changed-meaning"
REASONS = (UNPARSEABLE, CHATTY, NOT_A_QUESTION, QUESTION_TYPE, PROTECTED, SHORT_ANSWER, MISSING_TARGET,
           UNSUPPORTED, DROPPED, CHANGED_MEANING, LENGTH, UNCHANGED, GARBLED)

# Nouns any answer about an image may use without the seed naming them: the image itself, where
# things are in it, and words of quantity and kind. They assert nothing that could be false.
GENERIC_NOUNS = frozenset("""
image picture photo photograph scene view shot frame side left right front back top bottom middle center centre
corner edge background foreground distance area part color colour shade number amount kind type sort variety
thing something anything nothing one ones lot bit way time moment presence appearance setting position
direction place spot detail feature element aspect shape size total pair group couple
""".split())
_LEAD_IN = re.compile(r"^\s*(?:sure|certainly|of course|okay|ok|here(?:'s| is| are)|rewritten|rephrased|the "
                      r"(?:rewritten|rephrased|new|reworded)|(?:new |rewritten |rephrased )?(?:question|answer)\s*:)",
                      re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_QUOTED = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”|\[[^\]\n]*\]")
MIN_LENGTH_RATIO, MAX_LENGTH_RATIO, LENGTH_SLACK_WORDS = 0.5, 2.0, 3


def piece_problem(kind: str, seed: str, reply: str) -> tuple[str, str] | None:
    """(reason, detail) that refuses `reply` as a rewrite of one question line or answer `seed`."""
    reply = reply.strip()
    if not reply:
        return UNPARSEABLE, "empty reply"
    if _LEAD_IN.match(reply):
        return CHATTY, reply[:200]
    if kind == "question":
        if "\n" in reply or not reply.endswith("?") or reply.count("?") > 1:
            return NOT_A_QUESTION, reply[:200]
        before, after = question_types(seed), question_types(reply)
        if before != after:
            return QUESTION_TYPE, f"{'/'.join(sorted(before))} became {'/'.join(sorted(after))}: {reply[:160]}"
    kept = [s for s in _NUMBER.findall(seed) + _QUOTED.findall(seed) if s not in reply]
    if kept or sorted(_NUMBER.findall(reply)) != sorted(_NUMBER.findall(seed)):
        return PROTECTED, f"{(kept or _NUMBER.findall(reply))[:3]}: {reply[:160]}"
    n, m = len(seed.split()), len(reply.split())
    if not MIN_LENGTH_RATIO * n - LENGTH_SLACK_WORDS <= m <= MAX_LENGTH_RATIO * n + LENGTH_SLACK_WORDS:
        return LENGTH, f"{m} words for the seed's {n}: {reply[:160]}"
    garbled = _garbled(seed, reply, kind)
    if garbled:
        return GARBLED, f"{garbled}: {reply[:160]}"
    return None


# Words that carry no content of their own: a rewrite may add, drop or move them. Everything
# else (nouns, verbs, adjectives, adverbs, prepositions of place, "you") is content.
FUNCTION_WORDS = frozenset("""
a an the this that these those it its it's he she they him them his her their there
is are was were be been being am do does did done can could will would shall should may might must
what which who whom whose where when why how
of to for with by from as and or but so if than then also just very really
any some each every all both either neither another other
""".split())
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
# Function words that carry the logic of a question: "both ... and" is not "either ... or", and
# "the reason for the group being here" is not "the reason for the group", and "What is it doing?"
# is not "What is doing?". A rewording keeps them.
LOGIC_WORDS = frozenset("and or nor either neither both all every each any some if than but only here "
                        "it its it's he she they him them his her their".split())


# Every question and answer in an image record is about the image: saying so, or not, changes
# nothing ("What color is the device in the image?" is "What color is the device?").
_ABOUT_THE_IMAGE = re.compile(r"\b(?:in|of|from|on)\s+(?:the|this)\s+(?:image|picture|photo|photograph|scene)\b",
                              re.IGNORECASE)
DETERMINERS = frozenset("a an the this that these those".split())


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in FUNCTION_WORDS]


def meaning_problem(seed: str, reply: str, bases, swaps: dict[str, str]) -> tuple[str, str] | None:
    """(reason, detail) when `reply` does not say what `seed` says in other words: each content
    word must be the seed's in some form (`bases(word)`: its dictionary forms, "holding" ->
    {"hold", "holding"}), or an offered synonym for it (`swaps`: synonym -> the seed's noun), one
    for one; and the wording must change by two words or more, determiners and "in the image"
    aside, or use an offered synonym, or it is the seed again. Stricter than meaning: "What is the
    plate made of?" -> "What does the plate have on it?" is refused (made is not have), as is any
    synonym no sense check offered."""
    before, after = content_words(_ABOUT_THE_IMAGE.sub(" ", seed)), content_words(_ABOUT_THE_IMAGE.sub(" ", reply))
    same = _same_word(bases, swaps)
    left = list(enumerate(after))
    lost, placed = [], []
    adds_do = _do_forms(reply) > _do_forms(seed)
    for word in before:
        match = next((k for k, (_, w) in enumerate(left) if same(word, w)), None)
        if match is None:
            lost.append(word)
        else:
            place, said = left.pop(match)
            placed.append(place)
            if _number_changed(word, said):
                return CHANGED_MEANING, f"{word} became {said}: {reply[:160]}"
            if adds_do and said != word and not word.endswith("ing"):
                # "does" turns "is sitting" into "sits", never "is made" into "make"
                return CHANGED_MEANING, f"{word} became {said} with 'do': {reply[:160]}"
    if lost or left:
        added = [w for _, w in left]
        return CHANGED_MEANING, f"lost {', '.join(lost) or '-'}; added {', '.join(added) or '-'}: {reply[:160]}"
    moved = _moved_more_than_one_phrase(placed)
    if moved:
        return CHANGED_MEANING, f"word order: {moved}: {reply[:160]}"
    rebound = _rebound(_bindings(seed), _bindings(reply), same)
    if rebound:
        return CHANGED_MEANING, f"{rebound}: {reply[:160]}"
    logic_before, logic_after = _logic(seed), _logic(reply)
    if logic_before != logic_after:
        return CHANGED_MEANING, f"{' '.join(logic_before) or '-'} became {' '.join(logic_after) or '-'}: {reply[:160]}"
    edits = _word_edits(_wording(seed), _wording(reply))
    if edits < MIN_WORD_EDITS and not any(w in swaps for w in after):
        return UNCHANGED, (f"{edits} word changed" if edits else "only determiners or 'in the image' changed")
    return None


def _do_forms(text: str) -> int:
    return sum(1 for w in _WORD.findall(text.lower()) if w in ("do", "does", "did"))


def _same_word(bases, swaps: dict[str, str]):
    """Whether a reply's word says a seed's word: a form of it, or an offered synonym for it."""
    def same(seed_word: str, word: str) -> bool:
        forms = bases(seed_word)
        return bool(bases(word) & forms or bases(swaps.get(word, word)) & forms)
    return same


# Nouns whose plural is not the singular and an ending.
IRREGULAR_PLURALS = {"man": "men", "woman": "women", "person": "people", "child": "children", "foot": "feet",
                     "tooth": "teeth", "mouse": "mice", "goose": "geese"}


def _number_changed(word: str, said: str) -> bool:
    """Whether `said` is `word` in the other number ("coaches" for "coach", "cat" for "cats"): one
    thing is not several, whatever the rest of the sentence says."""
    if word == said:
        return False
    one, other = sorted((word, said), key=len)
    return (other in (one + "s", one + "es") or (one.endswith("y") and other == one[:-1] + "ies")
            or IRREGULAR_PLURALS.get(word) == said or IRREGULAR_PLURALS.get(said) == word)


def _moved_more_than_one_phrase(placed: list[int]) -> str | None:
    """Whether the seed's content words, at their places in the reply (`placed`, in the seed's
    order), are the seed's order with at most one run of them moved: "In his left hand, what is
    the man holding?" moves one phrase; "Is the cat chasing the dog?" for "Is the dog chasing the
    cat?" moves two words apart, which changes who does what."""
    order = sorted(range(len(placed)), key=placed.__getitem__)  # seed positions in reply order
    if order == sorted(order):
        return None
    for i in range(len(order)):
        for j in range(i + 1, len(order) + 1):
            run, rest = order[i:j], order[:i] + order[j:]
            if run == list(range(run[0], run[0] + len(run))) and rest == sorted(rest):
                return None
    return " ".join(str(k) for k in order)


# Prepositions and what they bind: "What is the tomato made of?" is not "What is made of a tomato?".
PREPOSITIONS = frozenset("""
of in on at by with from to for into onto inside outside under over above below beneath behind beside
near next between among across through along around against toward towards without within about off
""".split())
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[,.;:?!]")


def _bindings(text: str) -> list[tuple[str, str | None]]:
    """Each preposition of `text` with the first content word after it, or None where nothing
    follows before a question word or punctuation ("made of?", "on what")."""
    tokens = _TOKEN.findall(_ABOUT_THE_IMAGE.sub(" ", text.lower()))
    found = []
    for i, token in enumerate(tokens):
        if token in PREPOSITIONS:
            head = None
            for word in tokens[i + 1:]:
                if word in INTERROGATIVES or not word[0].isalpha():
                    break
                if word not in FUNCTION_WORDS and word not in PREPOSITIONS:
                    head = word
                    break
            found.append((token, head))
    return found


def _rebound(before: list, after: list, same) -> str | None:
    """A preposition of the seed bound to another word in the reply, or one the reply adds."""
    left = list(after)
    for preposition, head in before:
        match = next((k for k, (p, h) in enumerate(left) if p == preposition
                      and (h == head or (h and head and same(head, h)))), None)
        if match is None:
            return f"'{preposition} {head or '?'}' is not in the reply"
        left.pop(match)
    if left:
        preposition, head = left[0]
        return f"'{preposition} {head or '?'}' is not in the seed"
    return None


def _logic(text: str) -> list[str]:
    return sorted(w for w in _WORD.findall(text.lower()) if w in LOGIC_WORDS)


# A rewording changes at least two words (or uses an offered synonym): one word's difference
# ("might" for "could") is a near-copy of a record the corpus already holds.
MIN_WORD_EDITS = 2


def _word_edits(a: list[str], b: list[str]) -> int:
    """Words inserted, deleted or replaced to turn `a` into `b` (Levenshtein over words)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def _wording(text: str) -> list[str]:
    """The words of `text` in order, but for determiners and saying it is about the image: a reply
    that changes only these is its seed again, a near-copy that deduplication would remove."""
    return [w for w in _WORD.findall(_ABOUT_THE_IMAGE.sub(" ", text.lower())) if w not in DETERMINERS]


# Finite auxiliaries and modals: a reword that has more than its seed stacked two ("What does
# the food is doing?", "Where does the dog is?").
AUXILIARIES = frozenset("is are was were am do does did can could will would shall should may might must".split())
INTERROGATIVES = frozenset("what which who whom whose where when why how".split())


def _garbled(seed: str, reply: str, kind: str) -> str | None:
    """What makes `reply` word salad that the word-level checks would let through: a question
    word the seed does not have ("What number is shown, is what?"), an answer of another number
    of sentences (a merge: "water, might indicate that..."), a grammar word used more often
    than the seed uses it, or once if it has none ("What is made of is the stare?"), or a run of
    words repeated more often than the seed repeats it ("The scene is a scene of a scene")."""
    before, after = _WORD.findall(seed.lower()), _WORD.findall(reply.lower())
    if kind == "question":
        asked = sorted(w for w in before if w in INTERROGATIVES)
        if sorted(w for w in after if w in INTERROGATIVES) != asked:
            return f"asks {' '.join(w for w in after if w in INTERROGATIVES) or '-'} for {' '.join(asked) or '-'}"
    seed_words = collections.Counter(before)
    for word, n in collections.Counter(w for w in after if w in FUNCTION_WORDS and w not in DETERMINERS).items():
        if n > max(seed_words[word], 1):
            return f"'{word}' {n} times for the seed's {seed_words[word]}"
    finite, seed_finite = (sum(1 for w in words if w in AUXILIARIES) for words in (after, before))
    if finite > seed_finite:
        return f"{finite} auxiliaries for the seed's {seed_finite}"
    bare, seed_bare = (_bare_be(words) for words in (after, before))
    if bare > seed_bare:
        return f"'be' with no modal or 'to' before it ({bare} for the seed's {seed_bare})"
    if kind == "answer" and _sentences(reply) != _sentences(seed):
        return f"{_sentences(reply)} sentence(s) for the seed's {_sentences(seed)}"
    seed_pairs = collections.Counter(zip(before, before[1:]))
    for pair, n in collections.Counter(zip(after, after[1:])).items():
        if n > 1 and n > seed_pairs[pair]:
            return f"'{' '.join(pair)}' {n} times"
    return None


# What may stand before a bare "be": a modal, "to", "not" ("could not be").
_BEFORE_BE = AUXILIARIES - {"is", "are", "was", "were", "am", "do", "does", "did"} | {"to", "not"}


def _bare_be(words: list[str]) -> int:
    """Uses of "be" that no modal or "to" licenses: "How many coaches do there be?"."""
    return sum(1 for i, w in enumerate(words) if w == "be" and not (i and words[i - 1] in _BEFORE_BE))


def _sentences(text: str) -> int:
    """Sentences of an answer: a merge leaves one without its subject ("..., might indicate")."""
    return len(re.findall(r"[.!?]+(?:\s|$)", text.strip() + " ")) or 1


def question_types(text: str) -> set[str]:
    """The interrogation perspective's types of a question, read after a fronted phrase too
    ("In the image, how many zebras ...?" is a "how many" question)."""
    found = turn_types(text)
    if found == {CATCH_ALL} and "," in text:
        found = turn_types(text.split(",", 1)[1])
    return found


def unsupported_nouns(nouns: Iterable[str], support: Iterable[str]) -> list[str]:
    """The reply's noun lemmas that neither the seed (or its caption) nor its related words hold."""
    allowed = set(support) | GENERIC_NOUNS
    return sorted(n for n in set(nouns) if n not in allowed and not _compound_of(n, allowed))


def _compound_of(noun: str, allowed: set[str]) -> bool:
    """A multi-word lemma whose every word is allowed ('tennis racket' beside 'tennis', 'racket')."""
    words = noun.split()
    return len(words) > 1 and all(w in allowed for w in words)


def rewrite_problem(seed_turns: list[dict], turns: list[dict], target: str, nouns: Iterable[str],
                    support: Iterable[str], seed_nouns: dict[str, frozenset[str]]) -> tuple[str, str] | None:
    """(reason, detail) that refuses the assembled rewrite of `seed_turns`: the same turns and
    short answers, not the seed word for word, the target noun present, no noun the seed does
    not support, and every noun of the seed's turns still there or said by a related word
    (`seed_nouns`: noun -> its related words), so that nothing the seed said is left out."""
    changed = keeps_short_answers(seed_turns, turns)
    if changed:
        return SHORT_ANSWER, changed
    if [_normal(t.get("value", "")) for t in turns] == [_normal(t.get("value", "")) for t in seed_turns]:
        return UNCHANGED, "every piece came back as it was"
    nouns = set(nouns)
    if target not in nouns:
        return MISSING_TARGET, f"'{target}' is gone"
    extra = unsupported_nouns(nouns, support)
    if extra:
        return UNSUPPORTED, ", ".join(extra[:8])
    dropped = sorted(n for n, related in seed_nouns.items()
                     if n not in nouns and not (related & nouns) and n not in GENERIC_NOUNS)
    if dropped:
        return DROPPED, ", ".join(dropped[:8])
    return None


def conversation_problem(caption: str, turns: list[dict] | None, target: str, answer_nouns: Iterable[str],
                         support: Iterable[str], max_words: int) -> tuple[str, str] | None:
    """(reason, detail) that refuses a conversation written from a caption: it parses, each
    human turn asks (a question, or a task such as "Describe ..."), the target is named, the
    answers name nothing the caption does not, and no answer is empty or past `max_words`."""
    if not turns:
        return UNPARSEABLE, "no Question/Answer blocks"
    for turn in turns:
        text = turn["value"].replace("<image>", "").strip()
        if turn["from"] == "human" and not (text.endswith("?") or _first_word(text) in INSTRUCTION_VERBS):
            return NOT_A_QUESTION, text[:200]
        if turn["from"] == "gpt":
            if _LEAD_IN.match(text):
                return CHATTY, text[:200]
            if not text or len(text.split()) > max_words:
                return LENGTH, f"an answer of {len(text.split())} words (at most {max_words})"
    extra = unsupported_nouns(answer_nouns, support)
    if extra:
        return UNSUPPORTED, ", ".join(extra[:8])
    if not any(_holds(t["value"], target) for t in turns):
        return MISSING_TARGET, f"'{target}' is not in the conversation (caption: {caption[:120]})"
    return None


def _holds(text: str, word: str) -> bool:
    from adr.tail_turns import word_pattern

    return bool(word_pattern(word).search(text))


def _first_word(text: str) -> str:
    found = re.match(r"[a-z]+", text.lower())
    return found.group(0) if found else ""


def _normal(text: str) -> str:
    return " ".join(text.split()).lower()
