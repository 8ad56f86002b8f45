"""Synonym replacement that keeps a record true about its image.

A record's nouns are swapped for WordNet synonyms that are tail tokens of the corpus (spec:
'Language synthesis'), under rules a researcher would check for:

- What a short answer says never changes: answers to "single word or phrase" and option-letter
  prompts, OCR-grounded answers, boxes, numbers, any answer of a few words. Instructions, option
  lists, OCR token lists, quoted text and bracketed coordinates are never touched either.
- A noun is replaced everywhere it occurs in the record or nowhere: a noun that also occurs in
  protected text (a short answer that repeats it), as a name ("Ford", "Golden Wonderment
  Killifish"), in capitals or inside a hyphenated word is left alone.
- STOPLIST nouns (abstract, temporal, positional, colour, media, pronoun-like) are never
  replaced nor used as replacements.
- The synonym shares the noun's dominant WordNet sense, that sense names a concrete thing and
  holds at least two thirds of the noun's sense-tagged uses, and the synonym's own dominant
  sense is the same one ("time" -> "clip" fails: clip's first sense is another) and it is mostly
  used as a noun ("youngster" -> "minor" fails: minor is mostly an adjective). A noun SemCor
  never tagged cannot show which sense is meant, so it is not replaced. One word for one word,
  unless the corpus itself uses the multiword synonym.
- Tail synonyms the corpus holds (1 <= count <= tau, rarest first) come before unseen ones.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from adr.protected import protected_spans
from adr.records import IMAGE_TOKEN

# A sense under this share of a word's uses is not dominant enough to assume it is the one meant:
# "plant" is a factory in 63% of SemCor's uses and vegetation in the rest.
DOMINANT_SHARE = 2 / 3

STOPLIST = frozenset("""
image images picture pictures photo photos photograph photography snapshot shot frame scene view
camera screen video film display background foreground
color colour colors colours hue shade tone
side top bottom front back left right middle center centre corner edge end part area region
section spot place position location direction distance way
time times day night morning afternoon evening moment period year years season date hour minute
second today week month age
thing things object objects item items stuff something anything everything nothing kind type sort
variety number amount lot lots group set pair couple piece bit total count size shape form
person people persons someone somebody anyone individual human humans man men woman women guy
lady gentleman one ones other others self everyone everybody nobody
question questions answer answers option options choice choices letter word words phrase sentence
description caption text title name label sign detail details element elements feature features
example instance reason purpose idea fact case point situation condition activity action event
use style design pattern look appearance
""".split())

# Synonyms WordNet lists that today's English reads in another register (slang, slurs: "babe"
# for a baby, "whore") or as a narrower or other thing ("slugger" is a power hitter, a "corsage"
# is worn, a "healer" is no therapist, a "felon" is convicted). Found by reading the offers on
# LLaVA-shaped runs (benchmarks/judged_swaps.jsonl). Never offered.
NOT_OFFERED = frozenset("""
babe whore harlot hooker imbecile moron cretin idiot retard broad dame chick wench hulk punk hood
slugger corsage healer felon protagonist proponent fleck cavity instrumentalist accountant murphy trafficker
foliage landrover admirer textile investigator elector defender occupant lad
""".split())

# Lexicographer files of the concrete nouns a picture shows.
# Not noun.body: "behind" -> "ass", "head" -> "caput".
CONCRETE = frozenset({"noun.animal", "noun.artifact", "noun.food", "noun.object", "noun.plant", "noun.substance",
                      "noun.person"})

@dataclass(frozen=True)
class Sense:
    """A noun's dominant WordNet sense: its synset, lexicographer file, and lemma names with how
    often each was tagged in this sense in WordNet's sense-tagged corpus (SemCor)."""
    name: str
    lexname: str
    lemmas: tuple[tuple[str, int], ...]
    share: float | None = None  # of the word's SemCor-tagged noun uses in this sense; None: never tagged
    noun_share: float | None = None  # of the word's SemCor-tagged uses, any part of speech, as a noun
    inflected: bool = False  # also an inflected form of another noun: "oxen" (ox), "cows" (cow)
    # Last words of the names of the sense's kinds (hyponyms) that do not also end in this word:
    # "toad" for "frog" (a true toad is a kind of frog), so "toad" would name another animal.
    kinds: frozenset[str] = frozenset()


# fits(word, synset name, context nouns) -> does the context show that the word means that sense?
Fits = Callable[[str, str, Iterable[str]], bool]


@dataclass(frozen=True)
class Replacement:
    noun: str
    synonym: str
    source: str          # "tail": the corpus holds it as a tail token; "unseen": it never occurs
    occurrences: int = 0

    def to_dict(self) -> dict:
        return {"noun": self.noun, "synonym": self.synonym, "source": self.source, "occurrences": self.occurrences}


def word_synonyms(noun: str, sense_of: Callable[[str], Sense | None], token_counts: Mapping[str, int],
                  tau: int) -> list[tuple[str, str]]:
    """(synonym, source) pairs for `noun` by the rules on the words alone, best first: tail
    tokens of the corpus rarest first, then words the corpus never uses, most used in English
    first; a word unseen in the corpus must be attested in this sense in SemCor ("chiropteran",
    "camelopard" and "charabanc" are not). Head tokens (count > tau) are never offered: they
    would feed the head. Whether the record uses the noun in this sense is `safe_synonyms`'s."""
    sense = sense_of(noun)
    if (noun in STOPLIST or sense is None or sense.lexname not in CONCRETE
            or noun not in {lemma.lower() for lemma, _ in sense.lemmas}  # an inflected form: "cars", "stands"
            or sense.share is None or sense.share < DOMINANT_SHARE):  # unattested: "trailer" as a dawdler
        return []
    out = []
    for lemma, uses in sense.lemmas:
        word = lemma.replace("_", " ")
        if word != word.lower() or not re.fullmatch(r"[a-z]+(?: [a-z]+)*", word):
            continue  # a name (WordNet capitalises them), digits, hyphens, apostrophes
        count = token_counts.get(word, 0)
        if (word in STOPLIST or word in NOT_OFFERED or count > tau or uses == 0 or (count == 0 and " " in word)
                or word.startswith(noun) or noun.startswith(word)):  # "ski" for "skis" is no synonym
            continue
        if word.endswith("ing"):
            continue  # the material or the activity, not the thing: "fencing" for "fence", "tubing" for "tube"
        own = sense_of(word) if " " not in word else sense
        if own is None or own.name != sense.name or (own.share is not None and own.share < DOMINANT_SHARE):
            continue  # the synonym's usual meaning is another one
        if own.inflected:
            continue  # read as another word's plural: "oxen" for "cattle" reads as castrated bulls
        if word in sense.kinds:
            continue  # names a kind of the thing, not the thing: "toad" for "frog"
        if own.noun_share is not None and own.noun_share < 0.5:
            continue  # mostly another part of speech: "minor" (an adjective in 13 of 15 uses) for "youngster"
        out.append((word, "tail" if count else "unseen", count if count else -uses))
    out.sort(key=lambda s: (s[1] != "tail", s[2]))
    return [(word, source) for word, source, _ in out]


def fitting(noun: str, synonyms: list[tuple[str, str]], sense_name: str, context: Iterable[str],
            fits: Fits) -> list[tuple[str, str]]:
    """The synonyms the context allows: the noun must mean the sense here ("Wii controller" is
    no accountant), and the synonym would be read in it ("airport depot" reads as a storehouse)."""
    context = tuple(context)
    if not synonyms or not fits(noun, sense_name, context):
        return []
    return [(w, source) for w, source in synonyms if fits(w, sense_name, context)]


def safe_synonyms(noun: str, sense_of: Callable[[str], Sense | None], token_counts: Mapping[str, int],
                  tau: int, context: Iterable[str] = (), fits: Fits | None = None) -> list[tuple[str, str]]:
    """`word_synonyms` that the record's context shows to fit: `context` holds the noun lemmas
    of the noun's sentences (`sentence_context`), `fits(word, synset, context)` says whether
    they show that `word` means `synset` here. Without that evidence nothing is offered."""
    if fits is None:
        return []
    found = word_synonyms(noun, sense_of, token_counts, tau)
    sense = sense_of(noun)
    return fitting(noun, found, sense.name, context, fits) if found and sense is not None else []


def _noun_pattern(nouns: Iterable[str]) -> re.Pattern:
    return _compiled_noun_pattern(tuple(sorted(set(nouns), key=lambda n: (-len(n), n))))


@functools.lru_cache(maxsize=16384)  # re's own cache holds 512: a corpus's noun sets overflow it
def _compiled_noun_pattern(nouns: tuple[str, ...]) -> re.Pattern:
    alternatives = "|".join(re.escape(n) for n in nouns)
    return re.compile(r"(?<![\w-])(?:(?P<article>an?)(?P<space>\s+))?(?P<noun>" + alternatives +
                      r")(?P<plural>s|es)?(?![\w-])", re.IGNORECASE)


_SIBILANT = ("s", "x", "z", "ch", "sh")


def _is_noun(match: re.Match) -> bool:
    """"cars" is "car" plus "s", "buses" is "bus" plus "es"; "cares" is not "car" plus "es"."""
    return match.group("plural") != "es" or match.group("noun").lower().endswith(_SIBILANT)


def plural(word: str) -> str:
    if word.endswith("man"):
        return word[:-3] + "men"           # highwayman -> highwaymen
    if word.endswith(_SIBILANT):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _inside(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(a < end and start < b for a, b in spans)


def _plain_occurrence(text: str, start: int, end: int) -> bool:
    """Lower case, or capitalised only as the first word of a sentence followed by a lower-case
    word: not a name, not an acronym, not part of a title."""
    word = text[start:end]
    if word.islower():
        return True
    if not (word[:1].isupper() and word[1:].islower()):
        return False
    before = text[:start].rstrip(" \t")
    sentence_start = not before or before[-1] in ".!?\n:" or before.endswith(IMAGE_TOKEN)
    following = re.match(r"\W*(\w)", text[end:])
    return sentence_start and not (following and following.group(1).isupper())


def replaceable_nouns(turns: list[dict], nouns: Iterable[str]) -> dict[str, int]:
    """noun -> its occurrences, for the nouns every occurrence of which may change."""
    nouns = [n for n in set(nouns) if n and n not in STOPLIST and re.fullmatch(r"[a-z]+", n)]
    if not nouns:
        return {}
    pattern = _noun_pattern(nouns)
    seen: dict[str, int] = {}
    blocked: set[str] = set()
    for turn, spans in zip(turns, protected_spans(turns)):
        text = turn.get("value", "")
        for m in filter(_is_noun, pattern.finditer(text)):
            noun = m.group("noun").lower()
            if _inside(spans, m.start("noun"), m.end()) or not _plain_occurrence(text, m.start("noun"), m.end()):
                blocked.add(noun)
            else:
                seen[noun] = seen.get(noun, 0) + 1
    return {n: k for n, k in seen.items() if n not in blocked}


_SENTENCE_END = re.compile(r"[.?!\n]+")
_WORDS = re.compile(r"[a-z]+")


def sentence_context(turns: list[dict], noun: str, nouns: Iterable[str]) -> frozenset[str]:
    """The record's nouns that share a sentence with `noun` (or its plural): the evidence for
    its sense. A whole long record is no evidence ("Pike, director of ..." beside a hundred
    other nouns)."""
    forms = {n: {n, plural(n)} for n in set(nouns) if n and re.fullmatch(r"[a-z]+", n)}
    own = forms.pop(noun, {noun, plural(noun)})
    out: set[str] = set()
    for turn in turns:
        for sentence in _SENTENCE_END.split(turn.get("value", "").lower()):
            words = set(_WORDS.findall(sentence))
            if words & own:
                out.update(n for n, f in forms.items() if words & f)
    return frozenset(out)


def replace_in_conversation(turns: list[dict], replacements: Iterable[Replacement]) -> list[dict]:
    """The turns with every occurrence of each noun (and its plural) outside protected text
    replaced: the first letter's case kept ("Dogs" -> "Hounds"), an indefinite article before
    it agreed ("a apple" never written)."""
    words = {r.noun: r.synonym for r in replacements}
    if not words:
        return [dict(t) for t in turns]
    pattern = _noun_pattern(words)

    def swap(match: re.Match) -> str:
        noun = match.group("noun")
        word = words[noun.lower()]
        if match.group("plural"):
            word = plural(word)
        if noun[:1].isupper():
            word = word[:1].upper() + word[1:]
        article = match.group("article")
        if not article:
            return word
        agreed = "an" if word[:1].lower() in "aeiou" else "a"
        if article[:1].isupper():
            agreed = agreed.capitalize()
        return f"{agreed}{match.group('space')}{word}"

    out = []
    for turn, spans in zip(turns, protected_spans(turns)):
        text = turn.get("value", "")
        pieces, last = [], 0
        for m in filter(_is_noun, pattern.finditer(text)):
            if _inside(spans, m.start("noun"), m.end()):
                continue
            pieces += [text[last:m.start()], swap(m)]
            last = m.end()
        out.append({**turn, "value": "".join(pieces) + text[last:]})
    return out
