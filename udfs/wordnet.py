"""WordNet noun synonyms (NLTK's reader over WordNet 3.0; see scripts/install_wordnet.py)."""

from __future__ import annotations

import functools
import re
import threading

from adr.errors import ConfigError
from adr.synonyms import CONCRETE, STOPLIST, Sense


@functools.lru_cache(maxsize=1)
def _wordnet():
    from nltk.corpus import wordnet

    try:
        wordnet.ensure_loaded()
    except LookupError:
        raise ConfigError("WordNet data not found: run `python scripts/install_wordnet.py` "
                          "(make install does) or set NLTK_DATA") from None
    return wordnet


# NLTK's reader seeks and reads shared file handles (lemma counts): one thread at a time, for
# runners that run several threads a process (multi_threading, Dataflow's SDK harness).
_READER = threading.Lock()


@functools.lru_cache(maxsize=65536)
def dominant_sense(word: str) -> Sense | None:
    """The first (most frequent) noun sense of `word`, or None if WordNet has no noun for it."""
    with _READER:
        return _dominant_sense(word)


def _dominant_sense(word: str) -> Sense | None:
    wn = _wordnet()
    name = word.replace(" ", "_")
    every = wn.synsets(name)  # every part of speech, nouns first, each in WordNet's sense order
    synsets = [s for s in every if s.pos() == wn.NOUN]
    if not synsets:
        return None
    first = synsets[0]
    if first.lexname() not in CONCRETE:  # never replaced nor offered: its counts are not read (and cost)
        return Sense(first.name(), first.lexname(), ())

    def uses(synset) -> int:  # SemCor-tagged uses of the word in this sense
        return sum(lemma.count() for lemma in synset.lemmas() if lemma.name().lower() == name)

    noun_uses = [uses(s) for s in synsets]
    any_pos = sum(uses(s) for s in every)
    inflected = any(base != name and wn.synsets(base, wn.NOUN) for base in wn._morphy(name, wn.NOUN))
    own = name.lower().split("_")[-1]
    kinds = set()
    for kind in first.closure(lambda s: s.hyponyms(), depth=2):
        heads = {lemma.name().lower().split("_")[-1] for lemma in kind.lemmas()}
        if own not in heads:  # "electric car" is also an "electric automobile": no kind of its own
            kinds |= heads
    return Sense(first.name(), first.lexname(), tuple((lemma.name(), lemma.count()) for lemma in first.lemmas()),
                 noun_uses[0] / sum(noun_uses) if sum(noun_uses) else None,
                 sum(noun_uses) / any_pos if any_pos else None, inflected, frozenset(kinds))


# Words that say nothing about which sense is meant: function words and the generic nouns of
# the replacer's stoplist ("person" would support every sense of "controller" that is a person).
_FUNCTION_WORDS = frozenset("""
a an the of in on at to for with by from and or but not no as that which who whom whose what when where
is are be been being was were has have had do does did it its this these those their they them such
than then there into onto out up down over under about any all some each every very more most less
usually especially often esp etc used using use make made one two also other another something
""".split())
_NOT_EVIDENCE = _FUNCTION_WORDS | STOPLIST
_WORD = re.compile(r"[a-z]+")


def sense_fits(noun: str, synset_name: str, context) -> bool:
    """Does the record's context say that `noun` means `synset_name` here? Yes only if that sense
    is the noun's best-supported noun sense, with at least one context noun in its signature
    (Lesk: gloss, examples and related synsets), strictly ahead of every other sense or level with
    them where the noun is used in that sense almost always (SemCor). A context noun
    that makes a WordNet compound with the noun ("airport terminal", "baseball bat", "wine
    glass") says the noun is the head of a set phrase, whose head a synonym would break: no."""
    words = frozenset(context) - _NOT_EVIDENCE - {noun}
    if not words:
        return False
    with _READER:
        senses = _noun_senses(noun)
        compounds = _compounds().get(noun, frozenset())
    if synset_name not in senses or words & compounds:
        return False
    support = {name: len(words & signature) for name, signature in senses.items()}
    best = support.pop(synset_name)
    if best == 0 or any(other > best for other in support.values()):
        return False
    if all(other < best for other in support.values()):
        return True
    with _READER:  # a tie is noise in a short context ("building" also supports the lift car)
        return _share(noun, synset_name) >= USUAL_SHARE


USUAL_SHARE = 0.9  # of the word's SemCor-tagged noun uses


def _share(noun: str, synset_name: str) -> float:
    """Of the noun's SemCor-tagged noun uses, the share in this sense (0 if never tagged)."""
    wn = _wordnet()
    name = noun.replace(" ", "_")
    uses = {s.name(): sum(l.count() for l in s.lemmas() if l.name().lower() == name) for s in wn.synsets(name, wn.NOUN)}
    total = sum(uses.values())
    return uses.get(synset_name, 0) / total if total else 0.0


@functools.lru_cache(maxsize=65536)
def _noun_senses(noun: str) -> dict[str, frozenset[str]]:
    """synset name -> signature, for every noun sense of `noun` (inflected forms included:
    "glasses" is also glass)."""
    wn = _wordnet()
    return {s.name(): _signature(s.name()) for s in wn.synsets(noun.replace(" ", "_"), wn.NOUN)}


@functools.lru_cache(maxsize=65536)
def _signature(synset_name: str) -> frozenset[str]:
    """Noun lemmas of a sense's own words (lemmas, gloss, examples) and of its neighbours':
    hypernyms two levels up, hyponyms, parts and wholes, domains."""
    wn = _wordnet()
    synset = wn.synset(synset_name)
    near = [synset, *synset.hypernyms(), *synset.instance_hypernyms(), *synset.hyponyms(),
            *synset.instance_hyponyms(), *synset.part_meronyms(), *synset.member_meronyms(),
            *synset.substance_meronyms(), *synset.part_holonyms(), *synset.member_holonyms(),
            *synset.substance_holonyms(), *synset.topic_domains(), *synset.region_domains()]
    far = [h for s in synset.hypernyms() + synset.instance_hypernyms() for h in s.hypernyms()]
    far += [h for s in synset.hyponyms() for h in s.hyponyms()]
    out: set[str] = set()
    for s in near:
        text = " ".join([s.definition(), *s.examples(), *(l.name() for l in s.lemmas())]).lower()
        out.update(wn.morphy(w, wn.NOUN) or w for w in _WORD.findall(text.replace("_", " ")))
    for s in far:
        out.update(w for l in s.lemmas() for w in l.name().lower().split("_"))
    return frozenset(out - _NOT_EVIDENCE)


@functools.lru_cache(maxsize=1)
def _compounds() -> dict[str, frozenset[str]]:
    """noun -> the words it makes a two-word WordNet noun with, either side ("terminal" ->
    {"airport", "bus", ...}, "fabric" -> {"softener", ...}): a set phrase keeps its words
    ("airport depot", "textile softener" are not what they replace), at the cost of a modifier
    swap that would have been fine ("car door" -> "automobile door")."""
    pairs: dict[str, set[str]] = {}
    for name in _wordnet().all_lemma_names("n"):
        parts = name.lower().split("_")
        if len(parts) == 2 and all(parts):
            pairs.setdefault(parts[1], set()).add(parts[0])
            pairs.setdefault(parts[0], set()).add(parts[1])
    return {w: frozenset(others) for w, others in pairs.items()}


@functools.lru_cache(maxsize=65536)
def related_nouns(noun: str) -> frozenset[str]:
    """Words a rewrite may say for `noun` without saying more than it: the lemmas of its noun
    senses (synonyms) and of their hypernyms two levels up ("zebra" -> "equine"; never a
    hyponym, which would be more specific than the seed: "dog" -> "poodle")."""
    wn = _wordnet()
    with _READER:
        senses = wn.synsets(noun.replace(" ", "_"), wn.NOUN)
        near = [*senses, *(h for s in senses for h in s.hypernyms() + s.instance_hypernyms())]
        near += [h for s in near[len(senses):] for h in s.hypernyms()]
        return frozenset(l.name().lower().replace("_", " ") for s in near for l in s.lemmas())


def rewrite_support(nouns) -> frozenset[str]:
    """The seed's nouns and every word related to one of them (`related_nouns`)."""
    out = set(nouns)
    for noun in nouns:
        out |= related_nouns(noun)
    return frozenset(out)


@functools.lru_cache(maxsize=65536)
def word_bases(word: str) -> frozenset[str]:
    """A word's dictionary forms in any part of speech, itself included ("holding" -> hold,
    holding; "cats" -> cat, cats): what a rewrite may inflect a seed word to."""
    wn = _wordnet()
    with _READER:
        return frozenset({word, *(b for pos in (wn.NOUN, wn.VERB, wn.ADJ, wn.ADV) for b in wn._morphy(word, pos))})
