from adr.grounding import Detection, chunks, match_label, merge, objects_of, prompt_labels


def test_prompt_is_the_deduplicated_lowercase_nouns_capped():
    assert prompt_labels(["Dog", "dog", "frisbee", " ", "Person"], 64) == ["dog", "frisbee", "person"]
    assert prompt_labels([f"n{i:03d}" for i in range(100)], 64)[-1] == "n063"
    assert chunks(["a", "b", "c", "d", "e"], 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert chunks([], 4) == [[]]


def test_detected_phrases_map_back_to_candidate_labels():
    candidates = ["traffic light", "light", "dog", "cat"]
    assert match_label("traffic light", candidates) == "traffic light"
    assert match_label("a traffic light [SEP]", candidates) == "traffic light"
    assert match_label("dog cat", candidates) == "dog"  # neighbours fired together: deterministic pick
    assert match_label("zebra", candidates) is None


def test_merge_thresholds_normalises_and_orders_detections_from_all_chunks():
    chunk_a = [Detection("dogs", 0.9, (0, 0, 10, 10)), Detection("cat", 0.2, (1, 1, 2, 2))]
    chunk_b = [Detection("Traffic Lights", 0.5, (5.04, 5, 9, 9)), Detection("sofa", 0.99, (0, 0, 1, 1))]
    merged = merge(chunk_a + chunk_b, ["dogs", "cat", "traffic lights"], threshold=0.4)
    assert merged == [Detection("dog", 0.9, (0, 0, 10, 10)), Detection("traffic light", 0.5, (5.0, 5, 9, 9))]
    assert objects_of(merged) == ["dog", "traffic light"]
