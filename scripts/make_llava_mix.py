"""Generate a corpus with the *shape* of LLaVA-1.5's ``llava_v1_5_mix665k.json``.

The text is NOT LLaVA's. Every record is built here from public data in ``../shared/data``
(see its SOURCES.md): COCO 2017 val captions (5,000 images), ScienceQA's LLaVA-format test
questions and the English Web Treebank's sentences (``# text = ...``). What is reproduced are the
public, structural facts of the real file, so that pipelines and benchmarks meet the same
volumes, id reuse, prompt templates and length spread:

* one JSON array as ``json.dump(records, f)`` writes it: one line, no indentation, default
  separators (``", "`` and ``": "``), ``ensure_ascii=True``; written streaming;
* 665,298 records at full scale, by image prefix ``coco/train2017/`` 364,100, ``vg/VG_100K/``
  and ``vg/VG_100K_2/`` 86,417, ``gqa/images/`` 72,140, ``ocr_vqa/images/`` 80,000,
  ``textvqa/train_images/`` 21,953 and 40,688 text-only ShareGPT-like chats with no ``image``
  key; other scales keep the proportions (largest remainder);
* ``id`` is the image id (COCO: 12-digit zero-padded; VG/GQA: numeric; OCR-VQA: ISBN-10-like;
  TextVQA: 16 hex digits; chats: ``"i6IyJda_0"``-like, unique). About 37.6 % of the records
  repeat an id an earlier record used: COCO images serve about 3.2 records each, spread through
  the shuffled file; the other sources' ids are unique. COCO ids beyond the 5,000 real val ids
  are ``real id + k * 1,000,000`` and keep the captions of that one real image;
* record kinds and templates of the real mix: LLaVA-Instruct conversation / detail / complex
  reasoning, VQAv2 and OK-VQA grouped short answers, A-OKVQA multiple choice, RefCOCO and
  Visual Genome region boxes and descriptions, GQA grouped short answers, OCR-VQA book
  questions (verbatim-repetitive), TextVQA with reference OCR tokens, long ShareGPT chats;
* about 121 words per record on average, the long tail being the text-only chats;
* no object annotations; a small share (``--exact-duplicates``, default 0.05 %) of
  byte-identical duplicate records at random later positions.

Questions are filled from caption words with templates: valid, not always sensible.

    python -m scripts.make_llava_mix --output PATH [--records N | --scale F] [--seed S]
        [--exact-duplicates R] [--data DIR]

Library use: ``from scripts.make_llava_mix import generate, write``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("ADR_SHARED_DATA", REPO.parent / "shared" / "data"))

FULL_RECORDS = 665_298
# (source, records in the real file, image path prefix)
SOURCES = (
    ("coco", 364_100),
    ("vg", 86_417),
    ("gqa", 72_140),
    ("ocr_vqa", 80_000),
    ("textvqa", 21_953),
    ("sharegpt", 40_688),
)
REPEATED_ID_SHARE = 0.376          # of all records, an id already used by an earlier record
VG_100K_SHARE = 0.6                # VG_100K vs VG_100K_2 (64,346 vs 43,733 images in VG 1.2)
GQA_N_SHARE = 0.12                 # GQA ids of the "n123456" form
# COCO records by sub-dataset, as counted in the released file (haotian-liu/LLaVA issue #702):
# LLaVA-Instruct 157,712 (split here like conversation 58K / detail 23K / complex reasoning 77K),
# VQAv2 82,783, OK-VQA 8,998, A-OKVQA 66,160, RefCOCO 48,447.
COCO_KINDS = (
    ("conversation", 57_097),
    ("detail", 23_411),
    ("reasoning", 77_204),
    ("vqav2", 82_783),
    ("okvqa", 8_998),
    ("aokvqa", 66_160),
    ("refcoco", 48_447),
)
KIND_NAMES = [k for k, _ in COCO_KINDS] + ["vg", "gqa", "ocr_vqa", "textvqa", "sharegpt"]
KIND = {name: i for i, name in enumerate(KIND_NAMES)}

SHORT_ANSWER = "\nAnswer the question using a single word or phrase."
MC_ANSWER = "Answer with the option's letter from the given choices directly."
BOX_PROMPT = "Please provide the bounding box coordinate of the region this sentence describes: "
REGION_PROMPT = "Please provide a short description for this region: "
TEXTCAPS_PROMPT = "Provide a one-sentence caption for the provided image."

DETAIL_PROMPTS = (
    "Describe the following image in detail",
    "Provide a detailed description of the given image",
    "Give an elaborate explanation of the image you see",
    "Share a comprehensive rundown of the presented image",
    "Offer a thorough analysis of the image",
    "Explain the various aspects of the image before you",
    "Clarify the contents of the displayed image with great detail",
    "Characterize the image using a well-detailed description",
    "Break down the elements of the image in a detailed manner",
    "Walk through the important details of the image",
    "Portray the image with a rich, descriptive narrative",
    "Narrate the contents of the image with precision",
    "Analyze the image in a comprehensive and detailed manner",
    "Illustrate the image through a descriptive explanation",
    "Examine the image closely and share its details",
    "Write an exhaustive depiction of the given image",
    "What do you see happening in this image?",
    "Can you elaborate on the elements of the picture provided?",
    "What do you think is going on in this snapshot?",
    "Explain the visual content of the image in great detail.",
    "What's happening in the scene?",
    "Can you describe the main features of this image for me?",
    "What are the key elements in this picture?",
    "Write a detailed description of the given image.",
)

COLORS = ("white", "black", "red", "blue", "green", "yellow", "brown", "orange", "pink", "purple",
          "gray", "grey", "silver", "gold", "tan")
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
           "nine": 9, "ten": 10, "several": 3, "couple": 2, "pair": 2}
PREPS = ("on", "in", "at", "near", "by", "under", "beside", "behind", "inside", "above", "next",
         "over", "along", "across", "through", "with", "outside", "atop", "underneath")
PLACE_NOUNS = ("front", "top", "side", "middle", "edge", "back", "corner", "center", "bottom", "end")
STOP = frozenset("""a an the this that these those some his her their its my our your of to and or
but is are was were be been being it he she they there here very while who which what as for from
into onto up down out off about one two three four five six seven eight nine ten several many few
other another each all both has have having had do does did not no can could will would just""".split())
PEOPLE = frozenset("""man woman men women person people boy girl child children kid kids player players
guy lady skier surfer skateboarder rider batter catcher pitcher couple family crowd baby""".split())
ANIMALS = frozenset("""dog dogs cat cats horse horses cow cows sheep elephant elephants giraffe giraffes
zebra zebras bird birds bear bears""".split())
INDOOR = frozenset("kitchen bathroom bedroom room office living desk bed couch sink toilet".split())
SCENES = ("kitchen", "bathroom", "bedroom", "street", "beach", "field", "park", "office", "airport",
          "ocean", "road", "city", "room", "restaurant", "zoo", "station", "snow", "lake", "yard")
MATERIALS = ("Wood", "Metal", "Plastic", "Glass", "Concrete", "Stone", "Brick", "Fabric")
SEASONS = ("Summer", "Winter", "Fall", "Spring")
USES = ("Transportation", "Eating", "Cooking", "Sitting", "Decoration", "Sleeping", "Storage",
        "Playing", "Protection", "Cleaning", "Work", "Travel")
BRANDS = ("Nike", "Apple", "Samsung", "Honda", "Toyota", "Wilson", "Dell", "Sony", "Adidas",
          "Coca cola", "Ikea", "Boeing", "Yamaha", "Canon", "Ford")
# OCR-VQA's genre list (Amazon book categories) with the descriptors its yes/no questions use.
BOOK_GENRES = (
    ("Arts & Photography", "art related"), ("Biographies & Memoirs", "life story"),
    ("Business & Money", "financial"), ("Calendars", "calendar"), ("Children's Books", "kids"),
    ("Christian Books & Bibles", "Christian"), ("Comics & Graphic Novels", "comics"),
    ("Computers & Technology", "digital technology"), ("Cookbooks, Food & Wine", "recipe"),
    ("Crafts, Hobbies & Home", "crafts or hobbies related"), ("Education & Teaching", "pedagogy"),
    ("Engineering & Transportation", "transportation engineering"), ("Gay & Lesbian", "homosexuality"),
    ("Health, Fitness & Dieting", "fitness"), ("History", "historical"),
    ("Humor & Entertainment", "comedy"), ("Law", "judicial"), ("Literature & Fiction", "fictional"),
    ("Medical Books", "pharmaceutical"), ("Mystery, Thriller & Suspense", "thriller"),
    ("Parenting & Relationships", "child-care"), ("Politics & Social Sciences", "sociopolitical"),
    ("Reference", "reference"), ("Religion & Spirituality", "religious"), ("Romance", "romantic"),
    ("Science & Math", "academic"), ("Science Fiction & Fantasy", "sci-fi"), ("Self-Help", "motivational"),
    ("Sports & Outdoors", "sports"), ("Teen & Young Adult", "youngster related"),
    ("Test Preparation", "exam preparation"), ("Travel", "journey related"),
)
ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

# LLaVA-Instruct-style answer sentences ("complex reasoning" and "conversation" padding).
REASONING = (
    "The {n} appears to be an important part of the scene, drawing the viewer's attention.",
    "The presence of the {n} suggests that the setting is used regularly for everyday activities.",
    "Considering the position of the {n} relative to the {m}, it is likely that they are being used together.",
    "One possible reason is that the {n} was placed there for convenience, making it easy to reach.",
    "It is also possible that the {m} provides some protection or support for the {n}.",
    "This arrangement indicates a casual, relaxed atmosphere rather than a formal event.",
    "People in such a setting should pay attention to their surroundings to stay safe.",
    "The {m} in the background helps to establish the context of the image.",
    "Overall, the image conveys a sense of routine and everyday life.",
    "The lighting and the arrangement of the {n} and the {m} suggest that the photo was taken during the day.",
    "Such a scene is common in urban areas, where space is limited and objects are placed close together.",
    "In this situation, the {n} might face challenges such as limited space or changing weather conditions.",
    "The combination of the {n} and the {m} creates an interesting visual contrast.",
    "It can be inferred that someone recently used the {n}, as it does not look abandoned.",
    "This may also indicate that the owner cares about the {m} and keeps it in good condition.",
    "Additionally, the {m} could serve as a landmark that helps people orient themselves.",
)
REASONING_QUESTIONS = (
    "What might be the purpose of the {n} in this setting?",
    "Why might the {n} be placed near the {m}?",
    "What challenges could the {n} face in this situation?",
    "What can be inferred about the {n} from the image?",
    "What is the significance of the {m} in this scene?",
    "What precautions should be taken around the {n}?",
    "How does the {m} relate to the {n} in the image?",
    "What might happen next in this scene?",
    "What could be the reason for the {n} being here?",
)


def _apportion(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder, ties to the first)."""
    s = sum(weights)
    if s <= 0 or total <= 0:
        return [0] * len(weights)
    base = [total * w // s for w in weights]
    rems = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % s), i))
    for i in rems[: total - sum(base)]:
        base[i] += 1
    return base


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _clean_caption(c: str) -> str:
    c = " ".join(c.split()).strip()
    if not c:
        return c
    c = _cap(c)
    return c if c[-1] in ".!?" else c + "."


def _plural(noun: str) -> str:
    if noun in PEOPLE and noun.endswith("man"):
        return noun[:-3] + "men"
    if noun.endswith("s"):
        return noun
    if noun.endswith(("ch", "sh", "x", "z")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


class _Facts:
    """What the captions of one real COCO image say, in template-ready pieces."""

    __slots__ = ("caps", "nouns", "colors", "counts", "actions", "places", "phrases",
                 "vqa", "gqa")


class Corpus:
    """The public text the records are made of, loaded once per data directory."""

    def __init__(self, data_dir: Path):
        data_dir = Path(data_dir)
        caps = json.loads((data_dir / "coco2017" / "captions_val2017.json").read_text())
        by_image: dict[int, list[str]] = {}
        for ann in caps["annotations"]:
            by_image.setdefault(ann["image_id"], []).append(_clean_caption(ann["caption"]))
        self.coco_ids = sorted(i for i, c in by_image.items() if c)
        self.coco_caps = [by_image[i] for i in self.coco_ids]
        self._facts: list[_Facts | None] = [None] * len(self.coco_ids)

        # EWT: sentences (chat text) and word classes (which caption words are nouns; names).
        self.sentences: list[str] = []
        tags: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        lemma: dict[str, str] = {}
        propn: dict[str, int] = {}
        nums: dict[str, int] = {}
        with open(data_dir / "ud_ewt" / "en_ewt-ud-train.conllu", encoding="utf-8") as f:
            for line in f:
                if line.startswith("# text = "):
                    self.sentences.append(line[9:].strip())
                    continue
                cols = line.rstrip("\n").split("\t")
                if len(cols) != 10 or not cols[0].isdigit():
                    continue
                form, upos = cols[1], cols[3]
                low = form.lower()
                tags[low][upos] += 1
                if upos == "NOUN":
                    lemma.setdefault(low, cols[2].lower())
                elif upos == "PROPN" and form.isalpha() and form[0].isupper() and len(form) > 2:
                    propn[form] = propn.get(form, 0) + 1
                elif upos == "NUM" and form.isdigit():
                    nums[form] = 1
        self.word_tag = {w: c.most_common(1)[0][0] for w, c in tags.items()}
        self.noun_lemma = lemma
        self.names = sorted(propn, key=lambda w: (-propn[w], w))[:3000]
        self.ewt_nouns = sorted((w for w, t in self.word_tag.items()
                                 if t == "NOUN" and w.isalpha() and len(w) > 3))
        self.ewt_adjs = sorted((w for w, t in self.word_tag.items()
                                if t == "ADJ" and w.isalpha() and len(w) > 3))
        self.numbers = sorted(nums, key=lambda s: (len(s), s))[:400] or ["1", "2", "3"]
        self.long_sentences = [s for s in self.sentences if len(s.split()) >= 6] or self.sentences

        # ScienceQA: text-only multiple-choice questions (for chats).
        self.sqa: list[tuple[str, str]] = []
        for r in json.loads((data_dir / "scienceqa" / "llava_test_CQM-A.json").read_text()):
            conv = r.get("conversations") or []
            if "image" in r or len(conv) < 2:
                continue
            q, a = conv[0]["value"], conv[1]["value"]
            if "\nA. " in q and "<image>" not in q:
                self.sqa.append((q, a.strip()))

        # Global pools for distractors.
        noun_freq: collections.Counter = collections.Counter()
        ving: dict[str, int] = {}
        for caps_ in self.coco_caps[:2000]:
            for c in caps_:
                toks = _tokens(c)
                for i, t in enumerate(toks):
                    if self._is_noun(toks, i):
                        noun_freq[self.noun_lemma.get(t, t)] += 1
                    elif t.endswith("ing") and len(t) > 4:
                        ving[t] = ving.get(t, 0) + 1
        self.common_nouns = [w for w, _ in sorted(noun_freq.items(), key=lambda kv: (-kv[1], kv[0]))
                             if w not in PLACE_NOUNS][:400]
        self.vings = sorted(ving, key=lambda w: (-ving[w], w))[:120] or ["sitting", "standing"]

    def _is_noun(self, toks: list[str], i: int) -> bool:
        t = toks[i]
        if t in STOP or t in PREPS or t in COLORS or not t.isalpha() or len(t) < 3:
            return False
        tag = self.word_tag.get(t)
        if tag is not None:
            return tag == "NOUN"
        return not t.endswith(("ing", "ly", "ed"))

    def facts(self, j: int) -> _Facts:
        f = self._facts[j]
        if f is None:
            f = self._facts[j] = self._make_facts(j)
        return f

    def _make_facts(self, j: int) -> _Facts:  # noqa: C901 - one pass over five captions
        f = _Facts()
        f.caps = self.coco_caps[j]
        freq: dict[str, int] = {}
        f.colors, f.counts, f.actions, f.places = {}, {}, {}, {}
        phrases: dict[str, None] = {}
        for cap in f.caps:
            toks = _tokens(cap)
            subject = None
            for i, t in enumerate(toks):
                if not self._is_noun(toks, i):
                    continue
                n = self.noun_lemma.get(t, t)
                if n in PLACE_NOUNS:
                    continue
                freq[n] = freq.get(n, 0) + 1
                mods = []
                k = i - 1
                while k >= 0 and len(mods) < 2 and toks[k] not in STOP and toks[k] not in PREPS \
                        and not toks[k].endswith("ing") and toks[k].isalpha():
                    mods.insert(0, toks[k])
                    k -= 1
                for m in mods:
                    if m in COLORS:
                        f.colors.setdefault(n, m)
                if k >= 0 and toks[k] in NUMBERS:
                    f.counts.setdefault(n, NUMBERS[toks[k]])
                phrase = " ".join(mods + [t])
                phrases.setdefault(phrase, None)
                if subject is None:
                    subject = n
                # action: noun [is/are] V-ing ... next noun
                a = i + 1
                if a < len(toks) and toks[a] in ("is", "are"):
                    a += 1
                if a < len(toks) and toks[a].endswith("ing") and len(toks[a]) > 4 and n not in f.actions:
                    end = a + 1
                    while end < len(toks) and end - a < 5 and not self._is_noun(toks, end):
                        end += 1
                    f.actions[n] = " ".join(toks[a:end + 1])
                # place: noun [V-ing] prep ... next noun
                p = i + 1
                if p < len(toks) and (toks[p].endswith("ing") or toks[p] in ("is", "are")):
                    p += 1
                if p < len(toks) and toks[p] in PREPS and toks[p] != "with" and n not in f.places:
                    end = p + 1
                    while end < len(toks) and end - p < 6 and (
                            not self._is_noun(toks, end) or toks[end] in PLACE_NOUNS):
                        end += 1
                    if end < len(toks):
                        obj = self.noun_lemma.get(toks[end], toks[end])
                        loc = " ".join(toks[p:end + 1])
                        prep = "next to" if toks[p] == "next" else toks[p]
                        f.places[n] = (prep, obj, loc)
                        phrases.setdefault(phrase + " " + loc, None)
        f.nouns = sorted(freq, key=lambda w: -freq[w]) or ["scene"]
        f.phrases = list(phrases) or [f.nouns[0]]
        f.vqa = self._vqa_pool(f)
        f.gqa = self._gqa_pool(f)
        return f

    def _distractor(self, f: _Facts, salt: int) -> str:
        pool = self.common_nouns
        for k in range(len(pool)):
            d = pool[(salt * 7 + k * 13) % len(pool)]
            if d not in f.nouns:
                return d
        return "giraffe"

    def _vqa_pool(self, f: _Facts) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        salt = len(f.caps[0]) if f.caps else 0
        for i, n in enumerate(f.nouns[:8]):
            if n in f.colors:
                out.append((f"What color is the {n}?", _cap(f.colors[n])))
                other = COLORS[(salt + i) % len(COLORS)]
                out.append((f"Is the {n} {other}?", "Yes" if other == f.colors[n] else "No"))
            if n in f.counts:
                out.append((f"How many {_plural(n)} are there?", str(f.counts[n])))
            elif i < 3:
                out.append((f"How many {_plural(n)} are in the picture?", str(1 + (salt + i) % 3)))
            if n in f.actions:
                act = f.actions[n]
                out.append((f"What is the {n} doing?", _cap(" ".join(w for w in act.split() if w not in STOP))))
                if act.startswith("holding "):
                    out.append((f"What is the {n} holding?", _cap(act.split()[-1])))
            if n in f.places:
                prep, obj, _ = f.places[n]
                out.append((f"Where is the {n}?", _cap(obj)))
                if prep in ("on", "in", "under", "near", "behind"):
                    out.append((f"What is the {n} {prep}?", _cap(obj)))
            if i < 4:
                out.append((f"Is there a {n} in the image?", "Yes"))
        out.append((f"Is there a {self._distractor(f, salt)} in the image?", "No"))
        scene = next((n for n in f.nouns if n in SCENES), None)
        if scene:
            out.append(("Where was this picture taken?", _cap(scene)))
            out.append(("Is this picture taken indoors?", "Yes" if scene in INDOOR else "No"))
        animal = next((n for n in f.nouns if n in ANIMALS), None)
        if animal:
            out.append(("What animal is shown?", _cap(animal)))
        person = next((n for n in f.nouns if n in PEOPLE), None)
        out.append(("Are there any people in the photo?", "Yes" if person else "No"))
        out.append(("What is the main object in the picture?", _cap(f.nouns[0])))
        return out

    def _gqa_pool(self, f: _Facts) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        salt = sum(len(c) for c in f.caps)
        ns = f.nouns[:6]
        for i, n in enumerate(ns):
            m = ns[(i + 1) % len(ns)]
            side = "Left" if (salt + i) % 2 else "Right"
            out.append((f"Which side of the picture is the {n} on?", side))
            if m != n:
                out.append((f"Is the {n} to the left or to the right of the {m}?", side))
                out.append((f"Are there both {_plural(n)} and {_plural(m)} in this picture?", "Yes"))
            if n in f.colors:
                c2 = COLORS[(salt + 3 * i) % len(COLORS)]
                c2 = c2 if c2 != f.colors[n] else "white"
                opts = (f.colors[n], c2) if i % 2 else (c2, f.colors[n])
                out.append((f"Is the {n} {opts[0]} or {opts[1]}?", _cap(f.colors[n])))
                out.append((f"What color is the {n}?", _cap(f.colors[n])))
            if n in f.places:
                prep, obj, _ = f.places[n]
                out.append((f"What is {prep} the {obj}?", _cap(n)))
                out.append((f"What is the {n} {prep}?", _cap(obj)))
            if n in f.actions:
                who = "Who" if n in PEOPLE else "What"
                out.append((f"{who} is {f.actions[n]}?", _cap(n)))
            out.append((f"What is the {n} made of?", MATERIALS[(salt + i) % len(MATERIALS)]))
        d = self._distractor(f, salt)
        out.append((f"Do you see any {_plural(d)}?", "No"))
        out.append((f"Are there {_plural(d)} or {_plural(ns[0])} in the picture?", "Yes"))
        return out


_TOKEN = re.compile(r"[a-z]+|\d+")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


_CORPORA: dict[str, Corpus] = {}


def load_corpus(data_dir: Path | str | None = None) -> Corpus:
    key = str(Path(data_dir or DEFAULT_DATA).resolve())
    if key not in _CORPORA:
        _CORPORA[key] = Corpus(Path(key))
    return _CORPORA[key]


# --------------------------------------------------------------------------------------------
# Record makers: (rng, corpus, id, image, facts) -> record
# --------------------------------------------------------------------------------------------

def _turns(pairs: list[tuple[str, str]]) -> list[dict]:
    out = []
    for q, a in pairs:
        out.append({"from": "human", "value": q})
        out.append({"from": "gpt", "value": a})
    return out


def _with_image(rng: random.Random, q: str, prefix_only: bool = True) -> str:
    if prefix_only or rng.random() < 0.5:
        return "<image>\n" + q
    return q + "\n<image>"


def _box(rng: random.Random) -> str:
    w, h = rng.uniform(0.05, 1.0), rng.uniform(0.05, 1.0)
    x1, y1 = rng.uniform(0.0, 1.0 - w), rng.uniform(0.0, 1.0 - h)
    return f"[{x1:.2f}, {y1:.2f}, {x1 + w:.2f}, {y1 + h:.2f}]"


def _pad(rng: random.Random, f: _Facts, k: int) -> str:
    n = f.nouns[0]
    m = f.nouns[1] if len(f.nouns) > 1 else "background"
    return " ".join(rng.choice(REASONING).format(n=n, m=m) for _ in range(k))


def _lc(sentence: str) -> str:
    return sentence[:1].lower() + sentence[1:].rstrip(".")


def _conversation(rng, corpus, f: _Facts) -> list[tuple[str, str]]:
    nouns = f.nouns
    qa: list[tuple[str, str]] = [("What is happening in the image?",
                                  f"In the image, {_lc(rng.choice(f.caps))}. " + _pad(rng, f, 1))]
    for n in nouns[:6]:
        if n in f.colors:
            qa.append((f"What color is the {n} in the image?",
                       f"The {n} in the image is {f.colors[n]}. " + _pad(rng, f, 1)))
        if n in f.actions:
            qa.append((f"What is the {n} doing?",
                       f"The {n} is {f.actions[n]}. " + _pad(rng, f, 2)))
        if n in f.places:
            qa.append((f"Where is the {n} located?",
                       f"The {n} is located {f.places[n][2]}. " + _pad(rng, f, 1)))
        if n in f.counts:
            qa.append((f"How many {_plural(n)} can be seen in the image?",
                       f"There are {f.counts[n]} {_plural(n)} in the image."))
    qa.append((f"What can you tell me about the {nouns[0]}?",
               f"{rng.choice(f.caps)} " + _pad(rng, f, 2)))
    k = min(len(qa), rng.choice((2, 2, 3, 3, 3, 4, 4, 5)))
    first, rest = qa[0], qa[1:]
    rng.shuffle(rest)
    if rng.random() < 0.4 or len(rest) < k:
        return [first] + rest[: k - 1]
    return rest[:k]


def make_coco(rng: random.Random, corpus: Corpus, kind: str, rid: str, image: str, f: _Facts) -> dict:
    if kind == "conversation":
        pairs = _conversation(rng, corpus, f)
        pairs[0] = (_with_image(rng, pairs[0][0], False), pairs[0][1])
    elif kind == "detail":
        caps = list(f.caps)
        rng.shuffle(caps)
        n = f.nouns[0]
        m = f.nouns[1] if len(f.nouns) > 1 else "background"
        ans = (f"The image shows {_lc(caps[0])}. " + " ".join(caps[1:])
               + f" In addition to the {n}, the {m} is also visible in the scene. " + _pad(rng, f, 2))
        pairs = [(_with_image(rng, rng.choice(DETAIL_PROMPTS), False), ans)]
    elif kind == "reasoning":
        n = rng.choice(f.nouns[:3])
        m = f.nouns[1] if len(f.nouns) > 1 and f.nouns[1] != n else f.nouns[0]
        q = rng.choice(REASONING_QUESTIONS).format(n=n, m=m)
        ans = f"In the image, {_lc(rng.choice(f.caps))}. " + _pad(rng, f, rng.randint(3, 6))
        pairs = [(_with_image(rng, q, False), ans)]
    elif kind == "vqav2":
        pool = f.vqa
        k = min(len(pool), rng.choice((2, 3, 3, 4, 4, 5, 6, 7)))
        pairs = [(q + SHORT_ANSWER, a) for q, a in rng.sample(pool, k)]
        pairs[0] = ("<image>\n" + pairs[0][0], pairs[0][1])
    elif kind == "okvqa":
        n = rng.choice(f.nouns[:3])
        pool = [(f"What is the {n} used for?", rng.choice(USES)),
                (f"Which brand makes this {n}?", rng.choice(BRANDS)),
                ("What season is it?", rng.choice(SEASONS)),
                (f"What type of {n} is this?", _cap(rng.choice(f.phrases).split()[0]))]
        pairs = [(q + SHORT_ANSWER, a) for q, a in rng.sample(pool, rng.choice((1, 1, 1, 2)))]
        pairs[0] = ("<image>\n" + pairs[0][0], pairs[0][1])
    elif kind == "aokvqa":
        pairs = [_aokvqa(rng, corpus, f)]
    else:  # refcoco
        pairs = _regions(rng, f, rng.choice((2, 3, 3, 4, 4, 5, 6, 8)))
    return {"id": rid, "image": image, "conversations": _turns(pairs)}


def _aokvqa(rng, corpus: Corpus, f: _Facts) -> tuple[str, str]:
    n = rng.choice(f.nouns[:3])
    r = rng.random()
    if n in f.actions and r < 0.35:
        q, right = f"What is the {n} doing?", f.actions[n].split()[0]
        wrong = [v for v in rng.sample(corpus.vings, 6) if v != right]
    elif n in f.colors and r < 0.6:
        q, right = f"What color is the {n}?", f.colors[n]
        wrong = [c for c in rng.sample(COLORS, 6) if c != right]
    elif n in f.places and r < 0.8:
        q, right = f"Where is the {n}?", f"{f.places[n][0]} the {f.places[n][1]}"
        wrong = [f"{rng.choice(PREPS)} the {d}" for d in rng.sample(corpus.common_nouns, 6)]
    else:
        q, right = "Which of these objects can be seen in the image?", n
        wrong = rng.sample(corpus.common_nouns, 8)
    opts = [right] + [w for w in wrong if w != right and w not in f.nouns][:3]
    while len(opts) < 4:
        opts.append(rng.choice(corpus.ewt_nouns))
    rng.shuffle(opts)
    letters = "ABCD"
    body = "\n".join(f"{letters[i]}. {o}" for i, o in enumerate(opts))
    return f"<image>\n{q}\n{body}\n{MC_ANSWER}", letters[opts.index(right)]


def _regions(rng: random.Random, f: _Facts, k: int) -> list[tuple[str, str]]:
    phrases = f.phrases
    k = min(k, len(phrases)) if len(phrases) >= 2 else k
    chosen = rng.sample(phrases, k) if k <= len(phrases) else [rng.choice(phrases) for _ in range(k)]
    pairs = []
    for p in chosen:
        box = _box(rng)
        if rng.random() < 0.5:
            pairs.append((BOX_PROMPT + p + ".", box))
        else:
            pairs.append((REGION_PROMPT + box, _cap(p) + "."))
    pairs[0] = ("<image>\n" + pairs[0][0], pairs[0][1])
    return pairs


def make_vg(rng, corpus: Corpus, rid: str, image: str) -> dict:
    f = corpus.facts(rng.randrange(len(corpus.coco_ids)))
    return {"id": rid, "image": image,
            "conversations": _turns(_regions(rng, f, rng.choice((4, 5, 6, 7, 8, 9, 10, 12))))}


def make_gqa(rng, corpus: Corpus, rid: str, image: str) -> dict:
    f = corpus.facts(rng.randrange(len(corpus.coco_ids)))
    pool = f.gqa
    k = min(len(pool), rng.choice((3, 4, 5, 6, 7, 8, 9, 10, 12, 14)))
    pairs = [(q + SHORT_ANSWER, a) for q, a in rng.sample(pool, k)]
    pairs[0] = ("<image>\n" + pairs[0][0], pairs[0][1])
    return {"id": rid, "image": image, "conversations": _turns(pairs)}


def _title(rng, corpus: Corpus) -> str:
    nouns, adjs, names = corpus.ewt_nouns, corpus.ewt_adjs, corpus.names
    r = rng.randrange(6)
    if r == 0:
        t = f"The {_cap(rng.choice(adjs))} {_cap(rng.choice(nouns))}"
    elif r == 1:
        t = f"{_cap(rng.choice(nouns))} of the {_cap(rng.choice(nouns))}"
    elif r == 2:
        t = f"A Guide to {_cap(rng.choice(nouns))} and {_cap(rng.choice(nouns))}"
    elif r == 3:
        t = f"{rng.choice(names)}: {_cap(rng.choice(adjs))} {_cap(rng.choice(nouns))}"
    elif r == 4:
        t = f"The Complete Book of {_cap(rng.choice(nouns))}"
    else:
        t = f"{_cap(rng.choice(adjs))} {_cap(rng.choice(nouns))} ({rng.choice(names)} Series)"
    return t


def make_ocr_vqa(rng, corpus: Corpus, rid: str, image: str) -> dict:
    genre, desc = rng.choice(BOOK_GENRES)
    author = f"{rng.choice(corpus.names)} {rng.choice(corpus.names)}"
    title = _title(rng, corpus)
    other_genre, other_desc = rng.choice(BOOK_GENRES)
    pairs = [
        (rng.choice(("Who wrote this book?", "Who is the author of this book?")), author),
        ("What is the title of this book?", title),
        (rng.choice(("What type of book is this?", "What is the genre of this book?")), genre),
    ]
    yes = rng.random() < 0.5
    pairs.append((f"Is this book related to {genre if yes else other_genre}?",
                  "Yes" if yes or other_genre == genre else "No"))
    yes = rng.random() < 0.5
    d = desc if yes else other_desc
    art = "an" if d[0] in "aeiouAEIOU" else "a"
    pairs.append((f"Is this {art} {d} book?", "Yes" if yes or d == desc else "No"))
    if rng.random() < 0.3:
        g2 = rng.choice(BOOK_GENRES)[0]
        pairs.append((f"Is this book related to {g2}?", "Yes" if g2 == genre else "No"))
    pairs = [(q + SHORT_ANSWER, a) for q, a in pairs]
    pairs[0] = ("<image>\n" + pairs[0][0], pairs[0][1])
    return {"id": rid, "image": image, "conversations": _turns(pairs)}


def make_textvqa(rng, corpus: Corpus, rid: str, image: str) -> dict:
    tokens = [rng.choice(corpus.names) if rng.random() < 0.7 else rng.choice(corpus.numbers)
              for _ in range(rng.randint(2, 9))]
    ocr = "Reference OCR token: " + ", ".join(tokens)
    if rng.random() < 0.3:  # TextCaps-style caption
        f = corpus.facts(rng.randrange(len(corpus.coco_ids)))
        cap = rng.choice(f.caps).rstrip(".") + f" with the word {tokens[0]} on it."
        return {"id": rid, "image": image, "conversations": _turns(
            [(f"<image>\n{TEXTCAPS_PROMPT}\n{ocr}", cap)])}
    num = next((t for t in tokens if t.isdigit()), None)
    r = rng.randrange(5)
    if num is not None and r == 0:
        q, a = "what number is shown?", num
    elif r == 1:
        q, a = "what is the brand name?", tokens[0].lower()
    elif r == 2:
        q, a = "what does the sign say?", " ".join(tokens[:2]).lower()
    elif r == 3:
        q, a = f"what is written on the {rng.choice(corpus.common_nouns[:60])}?", tokens[-1].lower()
    else:
        q, a = "what is the first word?", tokens[0].lower()
    return {"id": rid, "image": image, "conversations": _turns(
        [(f"<image>\n{q}\n{ocr}{SHORT_ANSWER}", a)])}


def make_sharegpt(rng, corpus: Corpus, rid: str) -> dict:
    sents = corpus.long_sentences
    ns = len(sents)
    pairs: list[tuple[str, str]] = []
    npairs = min(8, max(1, int(rng.lognormvariate(1.0, 0.55))))
    for t in range(npairs):
        if t == 0 and corpus.sqa and rng.random() < 0.12:
            q, a = rng.choice(corpus.sqa)
            ans = f"The answer is {a}."
        else:
            i = rng.randrange(ns)
            q = " ".join(sents[i: i + rng.randint(1, 3)]) or sents[0]
            ans = ""
        k = min(80, max(2, int(rng.lognormvariate(2.25, 0.6))))
        i = rng.randrange(ns)
        body = " ".join(sents[i: i + k]) or sents[0]
        if k > 8 and rng.random() < 0.5:  # paragraphs and lists, as chat answers have
            parts = body.split(". ")
            body = ".\n\n".join(parts)
        pairs.append((q, (ans + " " + body).strip()))
    return {"id": rid, "conversations": _turns(pairs)}


# --------------------------------------------------------------------------------------------
# Plan and generation
# --------------------------------------------------------------------------------------------

def _isbn10(rng: random.Random) -> str:
    digits = [rng.randrange(10) for _ in range(9)]
    check = (11 - sum((10 - i) * d for i, d in enumerate(digits)) % 11) % 11
    return "".join(map(str, digits)) + ("X" if check == 10 else str(check))


def _unique(rng: random.Random, n: int, make) -> list[str]:
    seen: dict[str, None] = {}
    while len(seen) < n:
        seen.setdefault(make(rng), None)
    return list(seen)


def source_counts(n: int) -> dict[str, int]:
    """Records per source at ``n`` records (largest remainder over the real file's counts)."""
    return dict(zip([s for s, _ in SOURCES], _apportion(n, [c for _, c in SOURCES])))


def generate(n: int = FULL_RECORDS, seed: int = 0, exact_duplicates: float = 0.0005,
             data_dir: Path | str | None = None) -> Iterator[dict]:
    """Yield ``n`` LLaVA-mix-shaped records, deterministically for ``seed``.

    An exact duplicate is the same dict object yielded again (it serialises byte-identically).
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    corpus = load_corpus(data_dir)
    rng = random.Random(seed)
    counts = source_counts(n)
    names = [s for s, _ in SOURCES]
    n_dup = min(max(0, round(exact_duplicates * n)), n // 2)
    dups = dict(zip(names, _apportion(n_dup, [counts[s] for s in names])))
    base = {s: counts[s] - dups[s] for s in names}
    for s in names:  # a source too small to hold a duplicate keeps its records
        if base[s] == 0 and dups[s]:
            base[s], dups[s] = counts[s], 0

    # ids. COCO absorbs the repeats: unique images = records - (target repeats - duplicates).
    target_repeats = round(REPEATED_ID_SHARE * n)
    n_coco = base["coco"]
    coco_unique = min(n_coco, max(1 if n_coco else 0, n_coco - max(0, target_repeats - sum(dups.values()))))
    order = list(range(len(corpus.coco_ids)))
    rng.shuffle(order)
    coco_ents = [(corpus.coco_ids[order[u % len(order)]] + (u // len(order)) * 1_000_000, order[u % len(order)])
                 for u in range(coco_unique)]
    pool = rng.sample(range(1, 2_420_000), base["vg"] + base["gqa"])
    vg_ids = pool[: base["vg"]]
    vg_dirs = [0 if rng.random() < VG_100K_SHARE else 1 for _ in vg_ids]
    gqa_ids = [str(x) for x in pool[base["vg"]:]]
    n_gqa_n = int(len(gqa_ids) * GQA_N_SHARE)
    for k, x in enumerate(rng.sample(range(100_000, 600_000), n_gqa_n)):
        gqa_ids[k] = f"n{x}"
    rng.shuffle(gqa_ids)
    ocr_ids = _unique(rng, base["ocr_vqa"], _isbn10)
    tv_ids = _unique(rng, base["textvqa"], lambda r: f"{r.getrandbits(64):016x}")
    chat_ids = _unique(rng, base["sharegpt"], lambda r: "".join(r.choices(ID_CHARS, k=7))
                       + "_" + str(r.choice((0, 0, 0, 0, 0, 1, 1, 2, 3))))

    # plan: (kind, entity index)
    kinds = [k for k, c in zip((k for k, _ in COCO_KINDS), _apportion(n_coco, [c for _, c in COCO_KINDS]))
             for _ in range(c)]
    rng.shuffle(kinds)
    images = list(range(coco_unique)) + [rng.randrange(coco_unique) for _ in range(n_coco - coco_unique)]
    rng.shuffle(images)
    plan = [(KIND[k], e) for k, e in zip(kinds, images)]
    del kinds, images
    for s in ("vg", "gqa", "ocr_vqa", "textvqa", "sharegpt"):
        plan.extend((KIND[s], e) for e in range(base[s]))
    rng.shuffle(plan)

    # exact duplicates: per source, distinct originals, each re-emitted at a later position
    L = len(plan)
    by_kind: dict[str, list[int]] = {s: [] for s in names}
    coco_codes = len(COCO_KINDS)
    for pos, (k, _) in enumerate(plan):
        s = "coco" if k < coco_codes else KIND_NAMES[k]
        if dups[s]:
            by_kind[s].append(pos)
    originals: set[int] = set()
    inserts: dict[int, list[int]] = {}
    for s in names:
        for pos in sorted(rng.sample(by_kind[s], dups[s])):
            originals.add(pos)
            inserts.setdefault(rng.randrange(pos, L), []).append(pos)
    del by_kind

    memo: dict[int, dict] = {}
    coco_seen: set[int] = set()
    for pos, (k, e) in enumerate(plan):
        name = KIND_NAMES[k]
        if k < coco_codes:
            cid, j = coco_ents[e]
            rid = f"{cid:012d}"
            facts = corpus.facts(j)
            for _ in range(20):  # short records of one image can coincide: keep duplicates planned only
                rec = make_coco(rng, corpus, name, rid, f"coco/train2017/{rid}.jpg", facts)
                sig = hash((e, tuple(c["value"] for c in rec["conversations"])))
                if sig not in coco_seen:
                    coco_seen.add(sig)
                    break
        elif name == "vg":
            rid = str(vg_ids[e])
            rec = make_vg(rng, corpus, rid, f"vg/{'VG_100K' if vg_dirs[e] == 0 else 'VG_100K_2'}/{rid}.jpg")
        elif name == "gqa":
            rid = gqa_ids[e]
            rec = make_gqa(rng, corpus, rid, f"gqa/images/{rid}.jpg")
        elif name == "ocr_vqa":
            rid = ocr_ids[e]
            rec = make_ocr_vqa(rng, corpus, rid, f"ocr_vqa/images/{rid}.jpg")
        elif name == "textvqa":
            rid = tv_ids[e]
            rec = make_textvqa(rng, corpus, rid, f"textvqa/train_images/{rid}.jpg")
        else:
            rec = make_sharegpt(rng, corpus, chat_ids[e])
        yield rec
        if pos in originals:
            memo[pos] = rec
        for src in inserts.get(pos, ()):
            yield memo.pop(src)


def write(path: Path | str, records: Iterable[dict]) -> dict:
    """Write ``records`` as ``json.dump(list(records), f)`` would, streaming; return stats.

    Stats: records, bytes, repeated_ids (records whose id an earlier record used),
    exact_duplicates (records byte-identical to an earlier one), mean_words.
    """
    dumps = json.JSONEncoder().encode  # json.dumps defaults: ensure_ascii, ", " and ": "
    seen_ids: set = set()
    seen_text: set[int] = set()  # hash of each record's text (64-bit; collisions negligible)
    n = repeated = exact = words = 0
    nbytes = 2
    with open(path, "w", encoding="ascii", buffering=1 << 20) as f:
        f.write("[")
        for rec in records:
            s = dumps(rec)
            if n:
                f.write(", ")
                nbytes += 2
            f.write(s)
            nbytes += len(s)
            n += 1
            rid = rec.get("id")
            if rid in seen_ids:
                repeated += 1
            else:
                seen_ids.add(rid)
            h = hash(s)
            if h in seen_text:
                exact += 1
            else:
                seen_text.add(h)
            for c in rec["conversations"]:
                words += len(c["value"].split())
        f.write("]")
    return {"records": n, "bytes": nbytes, "repeated_ids": repeated, "exact_duplicates": exact,
            "mean_words": words / n if n else 0.0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", required=True, type=Path)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--records", type=int, help=f"number of records (default {FULL_RECORDS})")
    g.add_argument("--scale", type=float, help="fraction of the full 665,298 records")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--exact-duplicates", type=float, default=0.0005)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    a = p.parse_args(argv)
    n = a.records if a.records is not None else (
        round(a.scale * FULL_RECORDS) if a.scale is not None else FULL_RECORDS)
    t0 = time.perf_counter()
    stats = write(a.output, generate(n, seed=a.seed, exact_duplicates=a.exact_duplicates, data_dir=a.data))
    print(f"records={stats['records']} repeated_ids={stats['repeated_ids']} "
          f"exact_duplicates={stats['exact_duplicates']} bytes={stats['bytes']} "
          f"mean_words={stats['mean_words']:.1f} seconds={time.perf_counter() - t0:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
