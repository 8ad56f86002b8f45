import pytest

from adr.errors import ConfigError
from adr.synthesis import offer_draw, offer_order, parse_mix, plan_budget, reassign_shortfall, synthetic_id


def places(keys, seed, method, target=("token", "cab")):
    """Each key's place in the plan as a seed of an offer for `target` that carries only it (the
    entity's room is what is offered: pipelines.synthesize.offers.order_of)."""
    keys = list(keys)
    return {k: offer_order(offer_draw(seed, k, method, *target), len(keys), len(keys)) for k in keys}


def plan_order(keys, seed, method, target=("token", "cab")):
    """The keys in the order the plan takes their offers: by place, ties by seed key (publish.Pick)."""
    place = places(keys, seed, method, target)
    return sorted(place, key=lambda k: (place[k], k))


def test_mix_and_budget_plan_sum_exactly():
    assert parse_mix(None) == {"visual": 0.6, "synonym": 0.2, "rewrite": 0.2}
    assert parse_mix("visual=3,synonym=1") == {"visual": 0.75, "synonym": 0.25, "rewrite": 0.0}
    for budget in (0, 1, 2, 7, 83_500, 83_517):
        plan = plan_budget(budget, parse_mix(None))
        assert sum(plan.values()) == budget
    assert plan_budget(10, parse_mix(None)) == {"visual": 6, "synonym": 2, "rewrite": 2}
    with pytest.raises(ConfigError):
        parse_mix("visual=1,dance=1")


def test_plan_order_is_a_seeded_permutation():
    ids = [f"r{i}" for i in range(100)]
    order = plan_order(ids, 42, "visual")
    assert sorted(order) == sorted(ids) and order != ids
    assert order == plan_order(reversed(ids), 42, "visual")
    assert order != plan_order(ids, 43, "visual") and order != plan_order(ids, 42, "synonym")
    assert order != plan_order(ids, 42, "visual", ("token", "taxi"))  # each target draws on its own
    assert synthetic_id("visual", "r1", 42) == synthetic_id("visual", "r1", 42) != synthetic_id("synonym", "r1", 42)
    assert synthetic_id("synonym", "r1", 42, "token\x1fcab") != synthetic_id("synonym", "r1", 42, "token\x1ftaxi")


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
    from adr.synthesis import BINS, bin_of, boundary, kept_per_bin, next_bins, shard_of_cells

    keys = [f"r{i}" for i in range(500)]
    place = places(keys, 42, "visual")
    counts: dict[int, int] = {}
    for k in keys:
        counts[bin_of(place[k])] = counts.get(bin_of(place[k]), 0) + 1
    # consecutive ranges from bin 0 cover the pool in plan order, each with at least what it was asked for
    order, start, taken = plan_order(keys, 42, "visual"), 0, []
    while start < BINS:
        end = next_bins(counts, start, 37)
        got = [k for k in order if start <= bin_of(place[k]) < end]
        assert len(got) >= 37 or end == BINS
        taken += got
        start = end
    assert taken == order
    # the n smallest draws: bins below b, and the k smallest of bin b
    for n in (0, 1, 37, 499, 500, 900):
        b, k = boundary(counts, n)
        kept = [x for x in order if bin_of(place[x]) < b]
        kept += [x for x in order if bin_of(place[x]) == b][:k]
        assert kept == order[:n]
        assert sum(kept_per_bin(counts, n).values()) == min(n, 500)
    # shards follow cell order and split about evenly
    shards = shard_of_cells([((b,), counts[b]) for b in sorted(counts)], 4)
    assert list(shards.values()) == sorted(shards.values()) and set(shards.values()) == {0, 1, 2, 3}


def test_ceilings_default_to_tau_and_take_a_multiple_or_counts():
    from adr.synthesis import parse_ceilings

    taus = {"token": 1364, "interrogation": 4895}
    assert parse_ceilings(None, taus) == taus
    assert parse_ceilings("1.5", taus) == {"token": 2046, "interrogation": 7342}
    assert parse_ceilings("token=2000", taus) == {"token": 2000, "interrogation": 4895}
    for bad in ("fast", "-1", "token=many", "object=3"):
        with pytest.raises(ConfigError):
            parse_ceilings(bad, taus)


def test_offers_in_plan_order_give_each_entity_its_share_of_its_room():
    """Taking the offers of smallest order gives each tail entity about the same fraction of its
    room (ceiling - count): the deficits share the budget, the rarest get most, none is planned
    past its ceiling, and head and catch-all entities are never targets."""
    from adr.synthesis import capacity, is_target, offer_order, planned

    tau = 100
    assert not is_target("token", "man", 5000, tau) and not is_target("interrogation", "other", 90, tau)
    assert is_target("token", "zebu", 3, tau) and is_target("token", "unseen", 0, tau)
    counts = {"zebu": 0, "yak": 40, "ox": 90}               # rooms 100, 60, 10
    offers = {"zebu": 500, "yak": 500, "ox": 500}
    orders = []
    for e, n in counts.items():
        room = capacity(n, tau)
        for i in range(offers[e]):
            order = offer_order(offer_draw(42, f"s{i}", "synonym", "token", e), offers[e], room)
            if order is not None:
                orders.append((order, e))
    orders.sort()
    for budget in (34, 85):
        taken = [e for _, e in orders[:budget]]
        reach = orders[budget - 1][0]
        for e, n in counts.items():
            room = capacity(n, tau)
            assert taken.count(e) <= room
            assert abs(taken.count(e) - reach * room) <= 3 * (reach * room) ** 0.5 + 2, (e, budget)
            assert planned(offers[e], room, reach) == int(reach * room)
        assert taken.count("zebu") > taken.count("yak") > taken.count("ox")
    # everything that can be drawn stays within each room, in expectation
    for e, n in counts.items():
        room = capacity(n, tau)
        assert abs(sum(1 for _, x in orders if x == e) - room) <= 3 * room ** 0.5 + 1, e
    assert offer_order(0.5, 10, 0) is None and offer_order(0.99, 10, 5) is None


def test_a_record_of_independent_pairs_keeps_the_pairs_that_hold_its_tail():
    from adr.tail_turns import independent_pairs, turns_holding, word_pattern

    vqa = [{"from": "human", "value": "<image>\nWhat color is the car?\nAnswer the question using a single word or phrase."},
           {"from": "gpt", "value": "Red"},
           {"from": "human", "value": "How many people are there?\nAnswer the question using a single word or phrase."},
           {"from": "gpt", "value": "2"},
           {"from": "human", "value": "Is the car parked?\nAnswer the question using a single word or phrase."},
           {"from": "gpt", "value": "Yes"}]
    assert independent_pairs(vqa)
    kept = turns_holding(vqa, word_pattern("car").search, with_image=True)
    assert [t["value"] for t in kept] == [vqa[0]["value"], "Red", vqa[4]["value"], "Yes"]
    assert kept[0]["value"].startswith("<image>\n") and sum("<image>" in t["value"] for t in kept) == 1
    later = turns_holding(vqa, word_pattern("people").search, with_image=True)
    assert [t["value"] for t in later] == ["<image>\n" + vqa[2]["value"], "2"]
    assert turns_holding(vqa, word_pattern("boat").search, with_image=True) == vqa  # nothing holds it: whole
    assert word_pattern("puppy").search("two puppies") and not word_pattern("car").search("a card")
    chat = [{"from": "human", "value": "<image>\nWhat is the man doing with the car?"},
            {"from": "gpt", "value": "He is washing it with a sponge and a bucket of soapy water, carefully."},
            {"from": "human", "value": "Why might he do that?"},
            {"from": "gpt", "value": "To keep the paint clean; dirt and salt can damage it over time."}]
    assert not independent_pairs(chat)
    assert turns_holding(chat, word_pattern("car").search, with_image=True) == chat  # later turns lean on "it"
