"""Every user mistake is one line on stderr and exit status 2, found before any engine starts:
wrong directories, malformed values, flags that do not go together, and a dictionary counted over
other input than the one given to rebalance."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import NLP_ARGS, ROOT

RECORD = {"id": "1", "image": "1.jpg", "conversations": [{"from": "human", "value": "<image>\nWhat is it?"},
                                                         {"from": "gpt", "value": "A cat on a red sofa."}]}


def adr(*argv) -> subprocess.CompletedProcess:
    """`adr ...` as a user runs it: its own process, its real stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *map(str, argv)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_one_line(returncode: int, stderr: str, command: str, message: str) -> None:
    assert returncode == 2, stderr
    assert "Traceback" not in stderr and stderr.count("\n") == 1, stderr
    assert stderr.startswith(f"adr {command}: error: ") and message in stderr, stderr


@pytest.fixture
def paths(tmp_path) -> dict[str, str]:
    """A tiny input, a directory of inputs, an empty directory, one that is not there, and the
    marker files of a finished `adr run` (stats/manifest.json, rebalance/summary.json)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_text(json.dumps(RECORD) + "\n")
    (tmp_path / "empty").mkdir()
    run = tmp_path / "run"
    for marker in ("stats/manifest.json", "rebalance/summary.json"):
        (run / marker).parent.mkdir(parents=True)
        (run / marker).write_text("{}\n")
    return {"input": str(data / "a.jsonl"), "dir": str(data), "empty": str(tmp_path / "empty"),
            "missing": str(tmp_path / "missing"), "run": str(run), "out": str(tmp_path / "out")}


REBALANCE = ["rebalance", "--dictionary", "{empty}", "--output", "{out}"]
SYNTHESIZE = ["synthesize", "--rebalanced", "{run}/rebalance", "--dictionary", "{run}/stats", "--output", "{out}"]
STATS = ["stats", "--input", "{input}", "--output", "{out}"]
RUN = ["run", "--input", "{input}", "--output", "{out}"]

MISTAKES = {
    # wrong directories
    "dictionary not there": (["rebalance", "--input", "{input}", "--dictionary", "{missing}", "--output", "{out}"],
                             "--dictionary {missing}: no such directory"),
    "dictionary not a stats output": (["rebalance", "--input", "{input}", "--dictionary", "{empty}", "--output",
                                       "{out}"], "--dictionary {empty}: not an `adr stats` output directory"),
    "dictionary a run directory": (["rebalance", "--input", "{input}", "--dictionary", "{run}", "--output", "{out}"],
                                   "(no manifest.json); did you mean {run}/stats?"),
    "rebalanced not there": (["synthesize", "--rebalanced", "{missing}", "--dictionary", "{run}/stats", "--output",
                              "{out}"], "--rebalanced {missing}: no such directory"),
    "rebalanced a run directory": (["synthesize", "--rebalanced", "{run}", "--dictionary", "{run}/stats", "--output",
                                    "{out}"], "(no summary.json); did you mean {run}/rebalance?"),
    "synthesize dictionary not a stats output": (["synthesize", "--rebalanced", "{run}/rebalance", "--dictionary",
                                                  "{empty}", "--output", "{out}"],
                                                 "--dictionary {empty}: not an `adr stats` output directory"),
    "run not there": (["report", "--run", "{missing}"], "--run {missing}: no such directory"),
    "run not a run directory": (["report", "--run", "{empty}"],
                                "--run {empty}: not an `adr run` output directory, or one cut short "
                                "(no stats/manifest.json)"),
    # malformed values
    "tail share without =": (STATS + ["--tail-share", "token0.9"],
                             "--tail-share must look like token=0.9,cooccurrence=0.75, got 'token0.9'"),
    "tail share without a name": (STATS + ["--tail-share", "=0.9"], "--tail-share must look like"),
    "tail share not a number": (STATS + ["--tail-share", "token=most"],
                                "tail share for token must be a number in (0, 1], got 'most'"),
    "tail share above 1": (STATS + ["--tail-share", "token=1.5"], "tail share for token must be a number in (0, 1]"),
    "tail share of no perspective": (STATS + ["--tail-share", "colour=0.5"], "unknown perspective 'colour'"),
    "perspectives misspelt": (STATS + ["--perspectives", "token;object"], "unknown perspective 'token;object'"),
    "perspectives empty": (STATS + ["--perspectives", ","], "no perspective in ','"),
    "rebalance perspectives misspelt": (["rebalance", "--input", "{input}", "--dictionary", "{run}/stats", "--output",
                                         "{out}", "--perspectives", "colour"], "unknown perspective 'colour'"),
    "mix without =": (SYNTHESIZE + ["--mix", "visual"], "--mix must look like visual=0.6,synonym=0.2,rewrite=0.2"),
    "mix not a number": (SYNTHESIZE + ["--mix", "visual=most"], "--mix must look like"),
    "mix not finite": (SYNTHESIZE + ["--mix", "visual=nan,synonym=1"], "--mix shares must be non-negative numbers"),
    "mix of no method": (SYNTHESIZE + ["--mix", "paint=1"], "unknown synthesis method(s) paint"),
    "ceiling malformed": (SYNTHESIZE + ["--ceiling", "lots"], "--ceiling must be a multiple of tau (1.5) or"),
    "ceiling of no perspective": (SYNTHESIZE + ["--ceiling", "colour=3"],
                                  "--ceiling names perspectives the dictionary lacks"),
    "min tail share above 1": (SYNTHESIZE + ["--min-tail-share", "2"], "--min-tail-share must be a number in [0, 1]"),
    "target size negative": (REBALANCE + ["--input", "{input}", "--target-size", "-1"],
                             "argument --target-size: must be at least 0, got -1"),
    "buckets zero": (REBALANCE + ["--input", "{input}", "--buckets", "0"], "argument --buckets: must be at least 1"),
    "partitions not a number": (STATS + ["--partitions", "many"], "argument --partitions: invalid int value: 'many'"),
    "budget negative": (SYNTHESIZE + ["--budget", "-2"], "argument --budget: must be at least 0, got -2"),
    "flag missing": (["rebalance", "--input", "{input}", "--output", "{out}"],
                     "the following arguments are required: --dictionary (see adr rebalance --help)"),
    # adr run: every stage's flags are checked before the first stage starts
    "run: mix malformed": (RUN + ["--mix", "visual"], "--mix must look like"),
    "run: tail share malformed": (RUN + ["--tail-share", "token=0"], "tail share for token must be a number in (0, 1]"),
    "run: target size negative": (RUN + ["--target-size", "-5"], "argument --target-size: must be at least 0"),
    "run: partial visual models": (RUN + ["--image-model", "{missing}"], "visual synthesis needs --image-model"),
    # flags that do not go together
    "no source": (REBALANCE, "one of --input, --pubsub-subscription or --kafka-topic is required"),
    "pubsub without streaming": (REBALANCE + ["--pubsub-subscription", "projects/p/subscriptions/s"],
                                 "--pubsub-subscription is for a streaming job: add --streaming"),
    "kafka without streaming": (REBALANCE + ["--kafka-topic", "records"],
                                "--kafka-topic is for a streaming job: add --streaming"),
    "watch for without streaming": (REBALANCE + ["--input", "{dir}", "--watch-for-secs", "5"],
                                    "--watch-for-secs is for a streaming job: add --streaming"),
    "watch interval without streaming": (REBALANCE + ["--input", "{dir}", "--watch-interval-secs", "1"],
                                         "--watch-interval-secs is for a streaming job"),
    "dictionary refresh without streaming": (REBALANCE + ["--input", "{input}", "--dictionary-refresh-secs", "2"],
                                             "--dictionary-refresh-secs is for a streaming job"),
    "window without streaming": (REBALANCE + ["--input", "{input}", "--window-secs", "5"],
                                 "--window-secs is for a streaming job"),
    "input and pubsub": (REBALANCE + ["--input", "{dir}", "--pubsub-subscription", "s", "--streaming"],
                         "--input and --pubsub-subscription: give one source of records"),
    "pubsub and kafka": (REBALANCE + ["--pubsub-subscription", "s", "--kafka-topic", "t", "--streaming"],
                         "--pubsub-subscription and --kafka-topic: give one source of records"),
    "kafka bootstrap without kafka": (REBALANCE + ["--input", "{input}", "--kafka-bootstrap", "broker:9092"],
                                      "--kafka-bootstrap is for --kafka-topic"),
    "kafka group without kafka": (REBALANCE + ["--pubsub-subscription", "s", "--streaming", "--kafka-group", "g"],
                                  "--kafka-group is for --kafka-topic"),
    "id label without pubsub": (REBALANCE + ["--kafka-topic", "t", "--streaming", "--pubsub-id-label", "uid"],
                                "--pubsub-id-label is for --pubsub-subscription"),
    "streaming two inputs": (REBALANCE + ["--input", "{dir}", "{empty}", "--streaming"],
                             "--streaming watches one --input directory or glob, got 2"),
    "streaming a file": (REBALANCE + ["--input", "{input}", "--streaming"],
                         "--streaming watches a directory or a glob for new files, and --input {input} is a file"),
    "streaming exact duplicates": (REBALANCE + ["--input", "{dir}", "--streaming", "--drop-exact-duplicates"],
                                   "--drop-exact-duplicates needs the whole corpus"),
    "watching pubsub": (REBALANCE + ["--pubsub-subscription", "s", "--streaming", "--watch-for-secs", "5"],
                        "--watch-for-secs is for a watched --input directory, not --pubsub-subscription"),
    "image model alone": (SYNTHESIZE + ["--image-model", "{missing}"],
                          "visual synthesis needs --image-model, --caption-model and --llm: --caption-model and "
                          "--llm missing"),
    "run streaming": (RUN + ["--streaming"], "adr run is a batch job"),
}


@pytest.mark.parametrize("name", MISTAKES)
def test_a_mistake_is_one_line_and_exit_2(name, paths, capsys):
    from pipelines.cli import main

    argv, message = MISTAKES[name]
    assert main([a.format(**paths) for a in argv]) == 2
    assert_one_line(2, capsys.readouterr().err, argv[0], message.format(**paths))
    assert not os.path.exists(paths["out"])  # found before anything was written


@pytest.mark.parametrize("name", ["dictionary not there", "rebalanced a run directory", "run not a run directory",
                                  "tail share without =", "mix without =", "pubsub without streaming",
                                  "run: tail share malformed"])
def test_as_a_user_runs_it_stderr_is_the_one_line(name, paths):
    """Its own process: no traceback escapes, and neither Spark nor Beam has started to say anything."""
    argv, message = MISTAKES[name]
    proc = adr(*[a.format(**paths) for a in argv])
    assert_one_line(proc.returncode, proc.stderr, argv[0], message.format(**paths))
    assert proc.stdout == ""


@pytest.fixture
def other_input(coco_jsonl, tmp_path):
    """The first 50 records of the corpus `coco_stats` counted: another input, another fingerprint."""
    path = tmp_path / "first50.jsonl"
    path.write_text("".join(coco_jsonl.read_text().splitlines(keepends=True)[:50]))
    return path


def test_a_dictionary_of_other_input_is_refused_with_both_fingerprints(coco_stats, other_input, tmp_path):
    from udfs.sources import expand_inputs, fingerprint

    stats_dir, manifest = coco_stats
    proc = adr("rebalance", "--input", other_input, "--dictionary", stats_dir, "--output", tmp_path / "o")
    counted, given = manifest["input"]["fingerprint"], fingerprint(expand_inputs(str(other_input)))
    assert_one_line(proc.returncode, proc.stderr, "rebalance",
                    f"--dictionary {stats_dir} counted other input (fingerprint {counted}) than --input "
                    f"(fingerprint {given}): pass --extract-entities to extract entities afresh")
    assert not (tmp_path / "o").exists()


def test_extract_entities_rebalances_other_input_with_the_dictionary(coco_stats, other_input, tmp_path, capsys):
    from pipelines.cli import main

    stats_dir, _ = coco_stats
    assert main(["rebalance", "--input", str(other_input), "--dictionary", str(stats_dir), "--output",
                 str(tmp_path / "o"), "--extract-entities", *NLP_ARGS]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["input"] == 50 and summary["kept"] + summary["dropped"] + summary["invalid"] == 50
    assert "input 50" in capsys.readouterr().out


def test_target_size_of_other_input_or_above_the_records_is_refused(coco_stats, coco_jsonl, other_input, tmp_path,
                                                                    capsys):
    from pipelines.cli import main

    stats_dir, manifest = coco_stats
    base = ["rebalance", "--dictionary", str(stats_dir), "--output", str(tmp_path / "o")]
    assert main(base + ["--input", str(coco_jsonl), "--target-size", str(manifest["records"] + 1)]) == 2
    assert_one_line(2, capsys.readouterr().err, "rebalance",
                    f"--target-size {manifest['records'] + 1} is more than can be kept: --dictionary {stats_dir} "
                    f"counted {manifest['records']} records")
    assert main(base + ["--input", str(other_input), "--extract-entities", "--target-size", "10"]) == 2
    assert_one_line(2, capsys.readouterr().err, "rebalance",
                    f"--target-size is estimated over the input --dictionary {stats_dir} counted")
    assert not (tmp_path / "o").exists()


def test_no_file_names_a_path_of_one_machine():
    """Paths are arguments or found from the repository (../shared beside the checkout), never one
    machine's absolute folders."""
    import re
    import shutil

    if not shutil.which("git") or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split("\n")
    machine = re.compile(r"(?<![\w.:/])/(?:work|home|Users|mnt|scratch)/\w")
    found = []
    for name in filter(None, names):
        path = ROOT / name
        if not path.is_file() or path.stat().st_size > 5_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found += [f"{name}:{i}" for i, line in enumerate(text.splitlines(), 1) if machine.search(line)]
    assert found == []
