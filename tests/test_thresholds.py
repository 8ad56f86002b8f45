import random
from collections import Counter

import numpy as np

from adr.dictionary import EntityCounts
from adr.thresholds import histogram, probability, threshold


def test_threshold_on_a_hand_checked_distribution():
    # counts 50, 20, 10, 10, 5, 3, 1, 1 -> total 100; running 50, 70, 80, 90 reaches 0.9 at rank 4
    counts = [50, 20, 10, 10, 5, 3, 1, 1]
    t = threshold(histogram(counts), 0.9)
    assert t.tau == 10
    assert (t.entities, t.mass) == (8, 100)
    assert t.tail_entities_pct == 75.0           # 10, 10, 5, 3, 1, 1 are tail (<= tau)
    assert t.tail_mass_pct == 30.0               # 10+10+5+3+1+1
    assert threshold(histogram(counts), 0.5).tau == 50
    assert threshold(histogram(counts), 0.75).tau == 10   # running 80 >= 75 first at rank 3
    assert threshold(histogram(counts), 1.0).tau == 1
    assert threshold({}, 0.9).tau == 0


def independent_tau(counts, rho):
    ordered = np.sort(np.array(counts))[::-1]
    running = np.cumsum(ordered)
    return int(ordered[np.argmax(running >= rho * running[-1])])


def test_threshold_agrees_with_a_sorted_cumsum_on_random_long_tails():
    rng = random.Random(7)
    for _ in range(200):
        counts = [max(1, int(rng.paretovariate(1.2))) for _ in range(rng.randint(1, 300))]
        rho = rng.choice([0.5, 0.75, 0.9, 0.95])
        assert threshold(histogram(counts), rho).tau == independent_tau(counts, rho)


def test_probability_is_above_one_for_tail_and_below_for_head():
    assert probability(10, 5) == 2.0 and probability(10, 40) == 0.25


def test_counts_merge_in_any_order_like_one_shard():
    rng = random.Random(3)
    vocab = [f"e{i}" for i in range(50)]
    rows = [{"token": rng.sample(vocab, rng.randint(0, 5)), "object": rng.sample(vocab, rng.randint(0, 3))}
            for _ in range(300)]
    whole = EntityCounts()
    shards = [EntityCounts() for _ in range(3)]
    for i, row in enumerate(rows):
        whole.add(row)
        shards[i % 3].add(row)
    a, b, c = shards
    for merged in ((a + b) + c, a + (b + c), c + a + b):
        assert merged.records == whole.records == 300
        assert merged.counts == whole.counts


def test_an_entity_counts_once_per_record_and_dictionary_p_is_tau_over_count():
    counts = EntityCounts()
    counts.add({"token": ["dog", "dog", "cat"]})
    counts.add({"token": ["dog"]})
    assert counts.counts["token"] == Counter({"dog": 2, "cat": 1})
    rows = counts.dictionary({"token": 0.5})
    assert rows == [("token", "cat", 1, 2 / 1), ("token", "dog", 2, 2 / 2)]
