from adr.entities.interrogation import interrogation_types, turn_types
from adr.entities.objects import cooccurrence_pairs, normalise_object, object_set, singular
from adr.entities.token import noun_lemmas


def test_objects_are_lowercase_singular():
    assert [singular(w) for w in ("skis", "people", "buses", "glasses", "benches", "giraffes", "bus",
                                  "scissors", "knives", "cherries", "tomatoes", "shoes", "grass")] == [
        "ski", "person", "bus", "glasses", "bench", "giraffe", "bus", "scissors", "knife", "cherry",
        "tomato", "shoe", "grass"]
    assert normalise_object("  Traffic   Lights ") == "traffic light"
    assert object_set(["Dogs", "dog", "Hot Dogs", ""]) == {"dog", "hot dog"}
    assert object_set(None) == set()


def test_cooccurrence_is_every_sorted_pair_of_distinct_objects():
    assert cooccurrence_pairs({"person", "dog", "frisbee"}) == {"dog,person", "dog,frisbee", "frisbee,person"}
    assert cooccurrence_pairs({"dog"}) == set()


def test_noun_lemmas_keep_nn_tags_normalised():
    tagged = [("DT", "the"), ("NNS", "Dogs"), ("VBP", "be"), ("NNP", "\u201cRex\u201d"), ("NN", "42"),
              ("NNPS", "Americans "), ("JJ", "red")]
    assert noun_lemmas(tagged) == {"dogs", "rex", "americans"}


def test_question_types_of_real_llava_questions():
    cases = {
        "<image>\nWhat color is the fire hydrant in the image?": {"what color"},
        "How many people are visible in the image?": {"how many"},
        "Where is the cat positioned in the image?": {"where"},
        "What kind of vehicle is parked on the street?": {"what kind of"},
        "What type of dog is this?": {"what kind of"},
        "Is there a clock on the tower?": {"is there"},
        "Are the people in the image skiing downhill or cross-country skiing?": {"is"},
        "Describe the following image.": {"describe"},
        "What do you think is going on in this snapshot?": {"what"},
        "Can you elaborate on the elements of the picture provided?": {"elaborate"},
        "Could you tell me how many zebras there are?": {"how many"},
        "What might be the purpose of this arrangement? Explain your answer.": {"what", "explain"},
        "Which figure of speech is used in this text?\nSing, O goddess\nA. chiasmus\nB. apostrophe": {"which"},
        "Why might the man be holding the umbrella?": {"why"},
        "The dog, a cat and a bird.": {"other"},
    }
    for text, expected in cases.items():
        assert turn_types(text) == expected, text
    assert interrogation_types(["How many dogs?", "Where are they?"]) == {"how many", "where"}
