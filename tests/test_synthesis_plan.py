import pytest

from adr.errors import ConfigError
from adr.synthesis import parse_mix, plan_budget, reassign_shortfall, seed_order, synthetic_id


def test_mix_and_budget_plan_sum_exactly():
    assert parse_mix(None) == {"visual": 0.6, "synonym": 0.2, "rewrite": 0.2}
    assert parse_mix("visual=3,synonym=1") == {"visual": 0.75, "synonym": 0.25, "rewrite": 0.0}
    for budget in (0, 1, 2, 7, 83_500, 83_517):
        plan = plan_budget(budget, parse_mix(None))
        assert sum(plan.values()) == budget
    assert plan_budget(10, parse_mix(None)) == {"visual": 6, "synonym": 2, "rewrite": 2}
    with pytest.raises(ConfigError):
        parse_mix("visual=1,dance=1")


def test_seed_order_is_a_seeded_permutation():
    ids = [f"r{i}" for i in range(100)]
    order = seed_order(ids, 42, "visual")
    assert sorted(order) == sorted(ids) and order != ids
    assert order == seed_order(reversed(ids), 42, "visual")
    assert order != seed_order(ids, 43, "visual") and order != seed_order(ids, 42, "synonym")
    assert synthetic_id("visual", "r1", 42) == synthetic_id("visual", "r1", 42) != synthetic_id("synonym", "r1", 42)


def test_a_closed_methods_shortfall_goes_to_the_open_ones_in_the_mix_proportions():
    mix = parse_mix("visual=0.6,synonym=0.3,rewrite=0.1")
    target = plan_budget(100, mix)
    new, moved = reassign_shortfall(target, {"visual": 10}, ["synonym", "rewrite"], mix)
    assert moved == {"visual": {"synonym": 38, "rewrite": 12}} and sum(new.values()) == 100
    assert new == {"visual": 10, "synonym": 68, "rewrite": 22}
    # none of the open methods has a share: equal parts; nothing open: nothing moves
    new2, moved2 = reassign_shortfall(new, {"visual": 10, "rewrite": 2}, ["synonym"], parse_mix("visual=1"))
    assert moved2 == {"rewrite": {"synonym": 20}} and new2 == {"visual": 10, "synonym": 88, "rewrite": 2}
    assert reassign_shortfall(new2, {}, [], mix) == (new2, {})
    assert reassign_shortfall(target, dict(target), ["synonym"], mix) == (target, {})  # nothing owed


def test_bin_ranges_take_what_is_needed_and_the_boundary_cuts_exactly():
    from adr.synthesis import BINS, bin_of, boundary, draw, kept_per_bin, next_bins, shard_of_cells

    keys = [f"r{i}" for i in range(500)]
    counts: dict[int, int] = {}
    for k in keys:
        counts[bin_of(draw(42, k, "visual"))] = counts.get(bin_of(draw(42, k, "visual")), 0) + 1
    # consecutive ranges from bin 0 cover the pool in seed order, each with at least what it was asked for
    order, start, taken = seed_order(keys, 42, "visual"), 0, []
    while start < BINS:
        end = next_bins(counts, start, 37)
        got = [k for k in order if start <= bin_of(draw(42, k, "visual")) < end]
        assert len(got) >= 37 or end == BINS
        taken += got
        start = end
    assert taken == order
    # the n smallest draws: bins below b, and the k smallest of bin b
    for n in (0, 1, 37, 499, 500, 900):
        b, k = boundary(counts, n)
        kept = [x for x in order if bin_of(draw(42, x, "visual")) < b]
        kept += [x for x in order if bin_of(draw(42, x, "visual")) == b][:k]
        assert kept == order[:n]
        assert sum(kept_per_bin(counts, n).values()) == min(n, 500)
    # shards follow cell order and split about evenly
    shards = shard_of_cells([((b,), counts[b]) for b in sorted(counts)], 4)
    assert list(shards.values()) == sorted(shards.values()) and set(shards.values()) == {0, 1, 2, 3}
