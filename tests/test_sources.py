"""The streaming JSON array reader of udfs.sources: positions, chunk boundaries, bad elements,
bounded memory and batches that arrive while the file is still being read."""

import gzip
import io
import json
import os
import random
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adr import records as R
from udfs.records import parse_raw
from udfs.sources import RAW_SCHEMA, _array_elements, read_raw

GOOD = {"id": "1", "image": "coco/1.jpg", "conversations": [
    {"from": "human", "value": "<image>\nWhat is on the table?"}, {"from": "gpt", "value": "A cake."}]}
ONE_TURN = {"id": "1", "conversations": [{"from": "human", "value": "<image>\nWhat is on the table?"}]}

# Elements whose text is awkward to cut: multi-byte UTF-8, escapes, numbers and literals that look
# complete when cut short, brackets and commas inside strings, a pretty-printed object and an
# invalid UTF-8 byte. The array is written by hand so each element's bytes are known.
TRICKY = [
    json.dumps({"id": "caf\u00e9 \u4e2d \U0001F600", "conversations": [
        {"from": "human", "value": "<image>\nHi, [there] {x}"}]}, ensure_ascii=False).encode(),
    b'{"id": "2", "n": -12.5e-3, "big": 12345678901234567890, "t": true, "f": false, "z": null}',
    b"123456789",
    b"-1.5E+10",
    b'"a string, with ] and } and \\" and \\\\"',
    b"true",
    b"null",
    b'[1, [2, {"a": []}], "]", -0.0e0]',
    b'{"esc": "\\u00e9\\ud83d\\ude00\\t\\/\\\\"}',
    json.dumps(GOOD, indent=2).encode(),
    b'{"id": "bad \xff\xfe bytes", "conversations": []}',
    b"{}",
    b"[]",
    b"0",
]
SEPARATORS = [b", ", b",\n  ", b",", b" ,\t", b"\r\n,"]


def tricky_array() -> bytes:
    body = TRICKY[0]
    for i, element in enumerate(TRICKY[1:]):
        body += SEPARATORS[i % len(SEPARATORS)] + element
    return b"[\n  " + body + b"\n]\n"


def llava_records(n: int) -> list[dict]:
    return [{"id": f"{i:012d}", "image": f"coco/train2017/{i:012d}.jpg", "conversations": [
        {"from": "human", "value": "<image>\nWhat is in the photo?"},
        {"from": "gpt", "value": f"Record {i}: " + "a dog on a red sofa near the window " * 8}]}
        for i in range(n)]


def read_raw_bytes(data: bytes, name: str = "part.json", **kw):
    import fsspec

    url = f"memory://sources-test/{name}"
    fsspec.filesystem("memory").pipe(url, data)
    return read_raw(url, **kw)


def elements(data: bytes, name: str = "part.json", **kw) -> list[tuple[int, bytes]]:
    """(position, raw bytes) of each element of `data`, read as read_raw reads a file of it."""
    rows = [r for b in read_raw_bytes(data, name, **kw) for r in b.to_pylist()]
    assert not [r for r in rows if r["error"]], rows
    return [(r["position"], r["raw"]) for r in rows]


def test_a_one_line_array_gives_every_element_its_index_and_exact_bytes():
    records = llava_records(500)
    data = json.dumps(records).encode()
    assert b"\n" not in data
    read = elements(data, chunk_size=4096)
    assert [index for index, _ in read] == list(range(500))
    assert [raw for _, raw in read] == [json.dumps(r).encode() for r in records]


@pytest.mark.parametrize("chunk_size", range(1, 65))
def test_elements_cut_by_chunk_boundaries_read_as_from_the_whole_file(chunk_size):
    data = tricky_array()
    whole = elements(data)
    assert whole == list(enumerate(TRICKY))  # byte-identical to slicing the original
    assert elements(data, chunk_size=chunk_size) == whole


def test_a_malformed_element_mid_array_is_reported_with_its_index_and_the_rest_are_read():
    records = llava_records(6)
    pieces = [json.dumps(r).encode() for r in records]
    pieces[3] = b'{"id": "000000000003", "conversations": [{"from": "human" "value": "x"}]}'
    data = b"[" + b", ".join(pieces) + b"]"
    for chunk_size in (1, 7, 64, 1 << 22):
        assert elements(data, chunk_size=chunk_size) == list(enumerate(pieces))
    batch = next(read_raw_bytes(data))
    parsed = parse_raw(batch).to_pylist()
    assert [(p["position"], p["reason"]) for p in parsed if p["reason"]] == [(3, R.MALFORMED_JSON)]


def test_a_non_utf8_byte_inside_an_element_is_kept_and_fails_later_as_not_utf8():
    data = b'[{"id": "a", "conversations": [{"from": "human", "value": "caf\xe9"}]}, ' + json.dumps(GOOD).encode() + b"]"
    for chunk_size in (1, 2, 43, 44, 45, 1 << 22):
        read = elements(data, chunk_size=chunk_size)
        assert read[0] == (0, b'{"id": "a", "conversations": [{"from": "human", "value": "caf\xe9"}]}')
        assert read[1] == (1, json.dumps(GOOD).encode())
    parsed = parse_raw(next(read_raw_bytes(data, chunk_size=3))).to_pylist()
    assert [p["reason"] for p in parsed] == [R.NOT_UTF8, None]


def test_a_byte_order_mark_is_skipped_in_arrays_and_json_lines():
    array = b"\xef\xbb\xbf \n" + json.dumps([GOOD, {**GOOD, "id": "2"}]).encode()
    lines = b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\n" + json.dumps({**GOOD, "id": "2"}).encode()
    for chunk_size in (1, 2, 3, 4, 1 << 22):
        assert [i for i, _ in elements(array, chunk_size=chunk_size)] == [0, 1]
        for name, data, positions in (("a.json", array, [0, 1]), ("b.jsonl", lines, [1, 2])):
            batch = next(read_raw_bytes(data, name, chunk_size=chunk_size))
            parsed = parse_raw(batch).to_pylist()
            assert [(p["position"], p["id"], p["reason"]) for p in parsed] == [
                (positions[0], "1", None), (positions[1], "2", None)]


def test_empty_arrays_trailing_text_and_a_missing_closing_bracket():
    for data in (b"[]", b"  [ \n ]\n", b"[\n]"):
        assert list(read_raw_bytes(data)) == []
    # Text after the closing ']' is reported as one more element, not dropped silently.
    data = b'[{"id": "a"}] \n garbage, {"id": "b"}\n'
    for chunk_size in (1, 5, 1 << 22):
        assert elements(data, chunk_size=chunk_size) == [(0, b'{"id": "a"}'), (1, b'garbage, {"id": "b"}')]
    assert elements(b"[1, 2]\n\n  \n") == [(0, b"1"), (1, b"2")]
    assert elements(b"[1, 2") == [(0, b"1"), (1, b"2")]  # cut short: not an error
    # An array is a file whose first byte other than whitespace is '['; any other is JSON Lines,
    # whatever its name: an object is line 1, not element 0.
    assert elements(b' \n{"id": "a"}\n[1]') == [(2, b'{"id": "a"}'), (3, b"[1]")]


def test_a_gzip_compressed_array_is_read_through_fsspec(tmp_path):
    records = llava_records(300)
    path = tmp_path / "mix.json.gz"
    path.write_bytes(gzip.compress(json.dumps(records).encode()))
    batches = list(read_raw(str(path), batch_size=128, chunk_size=1000))
    assert [b.num_rows for b in batches] == [128, 128, 44] and all(b.schema == RAW_SCHEMA for b in batches)
    rows = [r for b in batches for r in b.to_pylist()]
    assert [r["position"] for r in rows] == list(range(300))
    assert [r["raw"] for r in rows] == [json.dumps(r).encode() for r in records]


def test_a_valid_element_longer_than_the_bound_fails_as_too_long_and_the_rest_are_read():
    small = [json.dumps({**GOOD, "id": str(i)}).encode() for i in range(4)]
    long = json.dumps({**GOOD, "id": "long", "pad": ["x, ]}\\\"" * 10] * 100}).encode()
    assert len(long) > 9_000
    data = b"[" + b", ".join(small[:2] + [long] + small[2:]) + b"]"
    for chunk_size in (1, 64, 4096, 1 << 22):
        read = elements(data, chunk_size=chunk_size, max_element_bytes=1000)
        assert [i for i, _ in read] == [0, 1, 2, 3, 4]
        assert [raw for _, raw in read[:2] + read[3:]] == small
        raw = read[2][1]
        assert raw == long or (len(raw) == 1001 and long.startswith(raw))  # cut when not held whole
        with pytest.raises(R.InvalidRecord) as err:
            R.parse_record(raw, max_bytes=1000)
        assert err.value.reason == R.TOO_LONG


def test_a_missing_bracket_does_not_swallow_the_rest_of_the_file(tmp_path):
    # Without its ']}', element 1 would go on to the end of the file: the reader finds that out
    # past its bound and reads on from the next ', {' after its start, as for any malformed element.
    pieces = [json.dumps({**ONE_TURN, "id": str(i)}).encode() for i in range(6)]
    broken = pieces[1].removesuffix(b"]}")
    data = b"[" + b", ".join(pieces[:1] + [broken] + pieces[2:]) + b"]\n"
    expected = list(enumerate(pieces[:1] + [broken] + pieces[2:]))
    for chunk_size in (1, 16, 64, 1 << 22):
        assert elements(data, chunk_size=chunk_size, max_element_bytes=100) == expected
    path = tmp_path / "broken.json.gz"
    path.write_bytes(gzip.compress(data))
    rows = [r for b in read_raw(str(path), chunk_size=64, max_element_bytes=100) for r in b.to_pylist()]
    assert [(r["position"], r["raw"]) for r in rows] == expected
    # Mismatched brackets found past the bound make a malformed element too (counting brackets
    # alone would end it at the second ']' and make the '}' after it one more element).
    mismatched = [pieces[0], broken + b"]]}"] + pieces[2:]
    data = b"[" + b", ".join(mismatched) + b"]"
    for chunk_size in (1, 16):
        assert elements(data, chunk_size=chunk_size, max_element_bytes=40) == [
            (i, raw[:41]) for i, raw in enumerate(mismatched)]


def test_a_stream_that_cannot_seek_ends_with_an_element_that_never_closes():
    """read_raw hands the array reader fsspec's file object, which may not seek (an HTTP stream
    without range requests): no file of this machine is one, so the reader is given one here."""
    class Unseekable(io.RawIOBase):
        def __init__(self, data):
            self.data = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            return self.data.readinto(b)

    pieces = [json.dumps({**ONE_TURN, "id": str(i)}).encode() for i in range(4)]
    data = b"[" + b", ".join([pieces[0], pieces[1].removesuffix(b"]}")] + pieces[2:]) + b"]"
    read = list(_array_elements(Unseekable(data), b"", 16, 100))
    assert read == [(0, pieces[0]), (1, data[len(pieces[0]) + 3:][:101])]


def test_memory_stays_bounded_while_reading_a_large_array(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps(llava_records(12_000)))
    size = path.stat().st_size
    assert size > 5_000_000
    tracemalloc.start()
    try:
        count = sum(b.num_rows for b in read_raw(str(path), batch_size=64, chunk_size=1 << 16))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 12_000
    assert peak < 1_000_000, f"peak {peak} bytes for a {size}-byte file"


def _position_of_open_file(path: str) -> int | None:
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == path:
                with open(f"/proc/self/fdinfo/{fd}") as info:
                    return int(info.readline().split()[1])
        except OSError:
            continue
    return None


@pytest.mark.skipif(not os.path.isdir("/proc/self/fdinfo"), reason="needs Linux /proc")
def test_batches_arrive_before_the_whole_file_is_read(tmp_path):
    path = tmp_path / "mix.json"
    path.write_text(json.dumps(llava_records(2000)))
    size = path.stat().st_size
    batches = read_raw(str(path), batch_size=100, chunk_size=1 << 16)
    first = next(batches)
    position = _position_of_open_file(str(path))
    assert first.num_rows == 100 and first.column("position").to_pylist() == list(range(100))
    assert position is not None and position < size / 4, (position, size)
    assert sum(b.num_rows for b in batches) == 1900


# ---- splits: bounded pieces of one file, read anywhere, equal to reading it whole ----------

def _whole(url):
    return [(r["position"], r["raw"]) for b in read_raw(url, batch_size=7) for r in b.to_pylist()]


def _by_splits(url, split_bytes, ramp=0):
    from udfs.splits import plan_splits, read_split

    splits = plan_splits([url], split_bytes, ramp)
    random.Random(split_bytes).shuffle(splits)  # any order, as workers pick them
    rows = [(r["position"], r["raw"]) for s in splits for b in read_split(s.to_dict(), batch_size=5)
            for r in b.to_pylist()]
    return sorted(rows), len(splits)


def _records(n):
    return [{"id": str(i % 7), "image": f"coco/{i % 7}.jpg", "conversations": [
        {"from": "human", "value": "<image>\nWhat is it? " + "\u00e9\u4e2d" * (i % 5) + "}, {\"x\": 1}"},
        {"from": "gpt", "value": "A [thing], " * (i % 9)}]} for i in range(n)]


@pytest.mark.parametrize("split_bytes", [1, 97, 400, 1000, 5000, 1 << 20])
def test_splits_of_a_one_line_array_read_as_the_whole_file(tmp_path, split_bytes):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(_records(120)))
    rows, n = _by_splits(str(path), split_bytes)
    assert rows == _whole(str(path)) and [p for p, _ in rows] == list(range(120))
    assert n > 1 or split_bytes >= path.stat().st_size


@pytest.mark.parametrize("split_bytes", [1, 150, 2000])
def test_splits_of_a_pretty_array_with_bad_elements_read_as_the_whole_file(tmp_path, split_bytes):
    good = [json.dumps(r, indent=2).encode() for r in _records(40)]
    elements = good[:10] + [b'{"id": "b", oops}', b'{"id": "\xff\xfe"}'] + good[10:] + [b"7"]
    path = tmp_path / "bad.json"
    path.write_bytes(b"\xef\xbb\xbf[\n" + b",\n".join(elements) + b"\n]\n")
    rows, _ = _by_splits(str(path), split_bytes)
    assert rows == _whole(str(path)) and len(rows) == 43


@pytest.mark.parametrize("split_bytes", [1, 300, 4000])
def test_splits_of_json_lines_keep_line_numbers(tmp_path, split_bytes):
    lines = [json.dumps(r) for r in _records(60)]
    lines[5], lines[17] = "", "   "
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\n\n")
    rows, n = _by_splits(str(path), split_bytes)
    assert rows == _whole(str(path)) and len(rows) == 58 and rows[-1][0] == 60
    assert n > 1 or split_bytes >= path.stat().st_size


@pytest.mark.parametrize("name", ["a.json", "a.jsonl"])
def test_the_first_splits_are_smaller_so_the_first_tasks_end_early(tmp_path, name):
    from udfs.splits import plan_splits

    records = _records(400)
    path = tmp_path / name
    path.write_text(json.dumps(records) if name == "a.json" else "\n".join(json.dumps(r) for r in records))
    sizes = [(s.start, s.end) for s in plan_splits([str(path)], 4000, ramp=3)]
    starts = [start for start, _ in sizes] + [path.stat().st_size]
    lengths = [b - a for a, b in zip(starts, starts[1:])]
    assert all(1000 <= n < 2000 for n in lengths[:3]) and all(n >= 4000 for n in lengths[3:-1]), lengths
    rows, _ = _by_splits(str(path), 4000, ramp=3)
    assert rows == _whole(str(path)) and len(rows) == 400


def test_compressed_and_parquet_files_are_one_split_each(tmp_path):
    import gzip

    from udfs.splits import plan_splits

    (tmp_path / "a.json.gz").write_bytes(gzip.compress(json.dumps(_records(50)).encode()))
    pq.write_table(pa.Table.from_pylist(_records(50)), tmp_path / "b.parquet")
    files = [str(tmp_path / "a.json.gz"), str(tmp_path / "b.parquet")]
    assert [s.kind for s in plan_splits(files, 1)] == ["whole", "whole"]
    for url in files:
        assert _by_splits(url, 1)[0] == sorted(_whole(url))


# ---- every input byte is read or explained (issue 23) ---------------------------------------

@pytest.mark.parametrize("split_bytes", [1, 120, 1 << 20])
def test_arrays_concatenated_are_read_whole_with_positions_that_count_on(tmp_path, split_bytes):
    first, second = _records(9), _records(14)[9:]
    path = tmp_path / "two.json"
    path.write_bytes(json.dumps(first).encode() + b"\n" + json.dumps(second).encode() + b"\n")
    expected = [(i, json.dumps(r).encode()) for i, r in enumerate(first + second)]
    assert _whole(str(path)) == expected
    assert _by_splits(str(path), split_bytes)[0] == expected
    for chunk_size in (1, 7, 1 << 22):  # text after the second array is still reported
        assert elements(b'[1] [2, 3]  x', chunk_size=chunk_size) == [(0, b"1"), (1, b"2"), (2, b"3"), (3, b"x")]


@pytest.mark.parametrize("split_bytes", [1, 1 << 30])
def test_a_json_lines_line_past_the_bound_is_a_too_long_dead_letter_and_never_held(tmp_path, split_bytes):
    """A 48 MiB line, read 1 MiB at a time with a 1 MiB bound: cut, not held (memory stays near one
    chunk, where `pending += chunk` held it all, and copied it once a chunk), the lines after it
    keep their numbers."""
    path = tmp_path / "long.jsonl"
    good = json.dumps(_records(1)[0])
    with path.open("w") as f:
        f.write(good + "\n")
        f.write('{"id": "x", "conversations": [{"from": "human", "value": "' + "y" * (48 << 20) + '"}]}\n')
        f.write("\n" + good + "\n")
    tracemalloc.start()
    from udfs.splits import plan_splits, read_split

    rows = [r for s in plan_splits([str(path)], split_bytes) for b in read_split(s, max_element_bytes=1 << 20)
            for r in b.to_pylist()]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [r["position"] for r in rows] == [1, 2, 4]
    assert len(rows[1]["raw"]) == (1 << 20) + 1 and rows[0]["raw"] == rows[2]["raw"] == good.encode()
    assert peak < 16 << 20, peak
    reasons = parse_raw(pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA), max_bytes=1 << 20).column("reason")
    assert reasons.to_pylist() == [None, R.TOO_LONG, None]


def _unreadable(tmp_path):
    """name -> a file that cannot be read to its end, and how many elements come before that."""
    lines = b"".join(json.dumps(r).encode() + b"\n" for r in _records(400))
    gz = gzip.compress(lines)
    import zlib

    # every line whole in what the damaged file still decompresses to is read
    readable = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(gz[: len(gz) // 2]).count(b"\n")
    assert 0 < readable < 400
    files = {"cut.jsonl.gz": (gz[: len(gz) // 2], readable), "empty.parquet": (b"", 0),
             "corrupt.parquet": (b"PAR1" + os.urandom(2000) + b"PAR1", 0),
             "garbage.json.gz": (b"\x1f\x8b\x08\x00" + os.urandom(500), 0)}
    try:
        import zstandard

        z = zstandard.ZstdCompressor().compress(lines)
        files["corrupt.jsonl.zst"] = (z[:40] + bytes(b ^ 0xFF for b in z[40:400]) + z[400:], None)
    except ImportError:
        pass
    out = {}
    for name, (data, before) in files.items():
        (tmp_path / name).write_bytes(data)
        out[name] = (tmp_path / name, before)
    return out


def test_a_file_that_cannot_be_read_to_its_end_ends_with_one_dead_letter_that_says_why(tmp_path):
    for name, (path, before) in _unreadable(tmp_path).items():
        rows = [r for b in read_raw(str(path)) for r in b.to_pylist()]
        errors = [r for r in rows if r["error"]]
        assert len(errors) == 1 and rows[-1] is errors[0], name
        assert before is None or len(rows) - 1 == before, (name, len(rows))
        if len(rows) > 1:  # what was read before the damage is kept, the dead letter comes after it
            assert errors[0]["position"] == rows[-2]["position"] + 1
        parsed = parse_raw(pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA))
        assert parsed.column("reason").to_pylist()[-1] == R.UNREADABLE_FILE, name
        assert parsed.column("reason").to_pylist()[:-1] == [None] * (len(rows) - 1), name
        assert errors[0]["error"] in parsed.column("detail").to_pylist()[-1]
    from adr.errors import InputError

    with pytest.raises(InputError, match="cannot read input"):  # not there: the user's mistake, one line
        list(read_raw(str(tmp_path / "missing.jsonl")))


def test_directory_inputs_skip_hidden_and_engine_temporary_folders_and_read_compressed_files(tmp_path):
    from udfs.sources import expand_inputs

    for rel in ("a.jsonl", "b.jsonl.gz", "c.json.bz2", "d.ndjson.xz", "e.jsonl.zst", "sub/f.parquet",
                "_temporary/0/part-0.jsonl", "beam-temp-out-123/x.jsonl", ".cache/y.jsonl", "sub/.hidden/z.json",
                "sub/_SUCCESS", ".g.jsonl", "notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    found = [os.path.relpath(p, tmp_path) for p in expand_inputs(str(tmp_path))]
    assert found == ["a.jsonl", "b.jsonl.gz", "c.json.bz2", "d.ndjson.xz", "e.jsonl.zst", "sub/f.parquet"]
    # The folder named is the user's choice, whatever its name.
    assert expand_inputs(str(tmp_path / "_temporary")) == [str(tmp_path / "_temporary/0/part-0.jsonl")]
