import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adr import records as R
from adr.errors import InputError
from udfs.records import dead_letter, parse_raw, valid_and_invalid
from udfs.sources import RAW_SCHEMA, expand_inputs, read_raw

GOOD = {"id": "1", "image": "coco/1.jpg", "conversations": [
    {"from": "human", "value": "<image>\nWhat is on the table?"}, {"from": "gpt", "value": "A cake."}],
    "extra": {"kept": True}}


def reason_of(raw: bytes, **kw):
    with pytest.raises(R.InvalidRecord) as err:
        R.parse_record(raw, **kw)
    return err.value.reason


def test_a_good_record_parses_with_its_extra_fields():
    assert R.parse_record(json.dumps(GOOD).encode()) == GOOD


@pytest.mark.parametrize("raw,reason", [
    (b'{"id": "1", "conversations": [', R.MALFORMED_JSON),
    (b'[1, 2]', R.NOT_AN_OBJECT),
    (b'"just a string"', R.NOT_AN_OBJECT),
    (b'{"conversations": [{"from": "human", "value": "hi"}]}', R.MISSING_ID),
    (b'{"id": "", "conversations": [{"from": "human", "value": "hi"}]}', R.MISSING_ID),
    (b'{"id": "1"}', R.BAD_CONVERSATIONS),
    (b'{"id": "1", "conversations": []}', R.BAD_CONVERSATIONS),
    (b'{"id": "1", "conversations": "hello"}', R.BAD_CONVERSATIONS),
    (b'{"id": "1", "conversations": [{"from": "robot", "value": "hi"}]}', R.BAD_CONVERSATIONS),
    (b'{"id": "1", "conversations": [{"from": "human", "value": 3}]}', R.BAD_CONVERSATIONS),
    (b'{"id": "1", "image": "../../etc/passwd", "conversations": [{"from": "human", "value": "hi"}]}', R.UNSAFE_IMAGE_PATH),
    (b'{"id": "1", "image": "/etc/passwd", "conversations": [{"from": "human", "value": "hi"}]}', R.UNSAFE_IMAGE_PATH),
    (b'{"id": "1", "image": "gs://b/x.jpg", "conversations": [{"from": "human", "value": "hi"}]}', R.UNSAFE_IMAGE_PATH),
    (b'{"id": "1", "objects": "dog", "conversations": [{"from": "human", "value": "hi"}]}', R.BAD_OBJECTS),
    (b'{"id": "1", "conversations": [{"from": "human", "value": "caf\xe9"}]}', R.NOT_UTF8),
])
def test_each_bad_input_kind_has_its_reason(raw, reason):
    assert reason_of(raw) == reason


def test_an_absurdly_long_record_is_rejected_before_parsing():
    raw = json.dumps({**GOOD, "conversations": GOOD["conversations"] * 5000}).encode()
    assert reason_of(raw, max_bytes=100_000) == R.TOO_LONG


def test_safe_paths():
    assert R.is_safe_relative_path("coco/train2017/000.jpg")
    assert R.is_safe_relative_path("a/./b/../c.jpg")
    for bad in ("", "../x.jpg", "a/../../x.jpg", "/abs.jpg", "C:\\x.jpg", "http://x/y.jpg", "a\\..\\..\\x"):
        assert not R.is_safe_relative_path(bad), bad


def test_json_array_reader_reports_indices_and_resumes_after_a_malformed_element(tmp_path):
    text = ('[\n  {"id": "a", "conversations": []},\n  {"id": "b", oops},\n'
            '  {"id": "c",\n   "x": 1},\n  7\n]\n')
    path = tmp_path / "a.json"
    path.write_text(text)
    for chunk_size in (1, 5, 64, 1 << 22):
        rows = [r for b in read_raw(str(path), chunk_size=chunk_size) for r in b.to_pylist()]
        assert not any(r["error"] for r in rows)
        elements = [(r["position"], r["raw"]) for r in rows]
        assert [index for index, _ in elements] == [0, 1, 2, 3]
        assert elements[1][1] == b'{"id": "b", oops}'
        assert json.loads(elements[2][1]) == {"id": "c", "x": 1}
        assert elements[3][1] == b"7"


def test_jsonl_reader_counts_lines_skips_blanks_and_keeps_raw_bytes(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"id": 1}\n\n   \n{"id": 2}\r\n\xff\xfe not utf8\n{"id": 3}')
    expected = [(1, b'{"id": 1}'), (4, b'{"id": 2}'), (5, b"\xff\xfe not utf8"), (6, b'{"id": 3}')]
    for chunk_size in (1, 2, 3, 7, 1 << 22):
        rows = [r for b in read_raw(str(path), batch_size=2, chunk_size=chunk_size) for r in b.to_pylist()]
        assert [(r["position"], r["raw"]) for r in rows] == expected


def test_parquet_rows_become_records(tmp_path):
    table = pa.Table.from_pylist([GOOD, {**GOOD, "id": "2", "image": None}])
    pq.write_table(table, tmp_path / "x.parquet")
    batch = next(read_raw(str(tmp_path / "x.parquet")))
    assert batch.schema == RAW_SCHEMA and batch.column("position").to_pylist() == [0, 1]
    parsed = parse_raw(batch).to_pylist()
    assert [p["id"] for p in parsed] == ["1", "2"] and all(p["reason"] is None for p in parsed)
    assert json.loads(parsed[0]["record"])["extra"] == {"kept": True}


def test_parse_raw_keeps_good_rows_and_explains_bad_ones():
    raws = [json.dumps(GOOD).encode(), b"{nope", json.dumps({**GOOD, "id": 5}).encode()]
    batch = pa.RecordBatch.from_pydict({"source": ["f"] * 3, "position": [1, 2, 3], "raw": raws})
    rows = parse_raw(batch).to_pylist()
    assert [r["id"] for r in rows] == ["1", None, "5"]
    assert [r["reason"] for r in rows] == [None, R.MALFORMED_JSON, None]
    assert rows[1]["raw"] == "{nope" and rows[1]["position"] == 2


def test_a_parsed_batch_splits_into_kept_rows_and_dead_letters_in_input_order():
    raws = [b"{nope", json.dumps(GOOD).encode(), b"[]", json.dumps({**GOOD, "id": 7}).encode()]
    batch = pa.RecordBatch.from_pydict({"source": ["f"] * 4, "position": [1, 2, 3, 4], "raw": raws})
    valid, invalid = valid_and_invalid(parse_raw(batch))
    assert valid.column("position").to_pylist() == [2, 4] and valid.column("id").to_pylist() == ["1", "7"]
    letters = [dead_letter(row) for row in invalid.to_pylist()]
    assert [(d["position"], d["reason"], d["raw"]) for d in letters] == [
        (1, R.MALFORMED_JSON, "{nope"), (3, R.NOT_AN_OBJECT, "[]")]
    assert set(letters[0]) == {"source", "position", "reason", "detail", "raw"}


def test_expand_inputs_globs_directories_and_missing(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/a.jsonl", "d/sub/b.json", "d/sub/c.parquet", "d/_SUCCESS", "d/notes.txt"):
        (tmp_path / name).write_text("")
    assert [p.rsplit("/", 1)[-1] for p in expand_inputs(str(tmp_path / "d"))] == ["a.jsonl", "b.json", "c.parquet"]
    assert len(expand_inputs(str(tmp_path / "d" / "*" / "*.json"))) == 1
    with pytest.raises(InputError, match="no such file"):
        expand_inputs(str(tmp_path / "missing.jsonl"))
    with pytest.raises(InputError, match="no data files"):
        expand_inputs(str(tmp_path / "d" / "*.csv"))


def test_reads_from_an_fsspec_object_store_url():
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/bucket/part-0.jsonl", json.dumps(GOOD).encode() + b"\n")
    fs.pipe("/bucket/part-1.json", json.dumps([GOOD, {**GOOD, "id": "2"}]).encode())
    files = expand_inputs("memory://bucket")
    assert [f.split("bucket/")[1] for f in files] == ["part-0.jsonl", "part-1.json"]
    assert all(f.startswith("memory://") for f in files)
    batches = [b for url in files for b in read_raw(url, chunk_size=16)]
    assert [b.column("position").to_pylist() for b in batches] == [[1], [0, 1]]
    ids = [parse_raw(b).column("id").to_pylist() for b in batches]
    assert ids == [["1"], ["1", "2"]]
