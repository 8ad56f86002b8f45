"""The token perspective's default spaCy pipeline: known answers, and the EWT measurement."""

import pytest

from adr.entities.token import NOUN_TAGS, noun_lemmas
from tests.conftest import EWT_DEV, NLP_ARGS
from udfs.nlp import load_nlp, tagged_nouns

NLP = NLP_ARGS[1] if NLP_ARGS else None


@pytest.mark.parametrize("text,nouns", [
    ("A man riding a wave on top of a surfboard.", {"man", "wave", "top", "surfboard"}),
    ("Two dogs are playing with frisbees in the grass.", {"dog", "frisbee", "grass"}),
    ("What color is the bus?", {"color", "bus"}),
    ("A woman stands in the dining area at the table.", {"woman", "dining", "area", "table"}),
    ("Several giraffes are eating from the trees.", {"giraffe", "tree"}),
])
def test_noun_lemmas_of_sentences_with_known_answers(text, nouns):
    assert noun_lemmas(next(tagged_nouns(load_nlp(NLP), [text]))) == nouns


def test_the_pipeline_loads_once_per_process():
    assert load_nlp(NLP) is load_nlp(NLP)


def test_a_pipeline_that_cannot_load_is_a_config_error(tmp_path):
    from adr.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot load spaCy pipeline"):
        load_nlp(str(tmp_path / "no-such-pipeline"))


@pytest.mark.needs_shared
def test_noun_lemma_f1_on_ewt_dev_has_a_floor():
    """Measured on the whole UD EWT dev split (2,001 sentences): see README 'Token tagger'."""
    from scripts.eval_tagger import evaluate

    result = evaluate(load_nlp(NLP), EWT_DEV)
    assert result["sentences"] == 2001
    assert result["f1"] >= F1_FLOOR, result


F1_FLOOR = 0.93


@pytest.mark.needs_shared
def test_nouns_lemmatized_alone_get_the_lemmas_of_the_whole_pipeline():
    """tagged_nouns runs the lemmatizer on noun tokens only: the lemmas must not change."""
    from scripts.eval_tagger import read_conllu

    nlp = load_nlp(NLP)
    texts = [s.text for s in read_conllu(EWT_DEV, limit=600)] + ["", "42", "Cats."]
    whole = [tuple((t.tag_, t.lemma_ or t.text) for t in doc if t.tag_ in NOUN_TAGS)
             for doc in nlp.pipe(texts)]
    assert sum(map(len, whole)) > 1500
    assert list(tagged_nouns(nlp, texts, batch_size=64)) == whole
