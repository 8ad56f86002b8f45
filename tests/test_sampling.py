import math

from adr.sampling import HEAD_ONLY, NO_ENTITIES, decide, keep_probability, uniform


def test_uniform_is_a_pure_function_in_the_unit_interval():
    draws = [uniform(42, f"id{i}", "token", "dog") for i in range(20000)]
    assert draws == [uniform(42, f"id{i}", "token", "dog") for i in range(20000)]
    assert all(0.0 <= u < 1.0 for u in draws)
    assert abs(sum(draws) / len(draws) - 0.5) < 0.01
    assert uniform(42, "a", "token", "dog") != uniform(43, "a", "token", "dog")
    assert uniform(42, "a", "token", "dog") != uniform(42, "a", "object", "dog")


def test_keep_probability_closed_form():
    assert keep_probability([]) == 0.0
    assert keep_probability([3.0, 0.1]) == 1.0
    assert math.isclose(keep_probability([0.5, 0.5]), 0.75)


def test_decide_keeps_tail_drops_empty_and_treats_unknown_as_tail():
    probs = {"token": {"dog": 0.0, "cat": 5.0}}
    assert decide(42, "r1", {"token": ["cat", "dog"]}, probs) == (True, None)
    assert decide(42, "r1", {"token": ["dog"]}, probs) == (False, HEAD_ONLY)
    assert decide(42, "r1", {"token": []}, probs) == (False, NO_ENTITIES)
    assert decide(42, "r1", {"token": ["zebra"]}, probs) == (True, None)


def test_decide_matches_its_probability_over_many_records():
    probs = {"token": {"a": 0.3, "b": 0.2}}
    kept = sum(decide(1, f"r{i}", {"token": ["a", "b"]}, probs)[0] for i in range(20000))
    expected = 20000 * keep_probability([0.3, 0.2])
    assert abs(kept - expected) < 4 * math.sqrt(20000 * 0.44 * 0.56)
