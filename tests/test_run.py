"""`adr run`: stages chained, reruns skipped, interrupted stages resumed, config and progress."""

import io
import json
import re
import shutil

import pytest

from adr.errors import ConfigError
from pipelines import run
from pipelines.progress import Progress
from pipelines.stages import stages
from tests.conftest import COCO_IMAGES, NLP_ARGS

STAGES = ("stats", "rebalance", "synthesize", "report")


def _jsonl(pattern_dir):
    return [json.loads(l) for p in sorted(pattern_dir.glob("*.jsonl")) for l in p.read_text().splitlines() if l]


def _run(argv, spark, capsys=None):
    outcome = run.run(argv, spark=spark)
    return outcome, (capsys.readouterr().err if capsys else "")


def test_run_chains_every_stage_and_the_counts_add_up(adr_run):
    out, outcome, err = adr_run
    assert outcome == dict.fromkeys(STAGES, "ran")
    manifest = json.loads((out / "stats" / "manifest.json").read_text())
    rebalance = json.loads((out / "rebalance" / "summary.json").read_text())
    synthesize = json.loads((out / "synthesize" / "summary.json").read_text())
    assert rebalance["input"] == manifest["elements_read"]
    assert rebalance["kept"] + rebalance["dropped"] + rebalance["invalid"] == rebalance["input"]
    assert rebalance["dropped"] > 0 and synthesize["budget"] == rebalance["budget"]
    # Without models the synonym method makes what the plan allows: under the budget when the
    # ceilings and the sense evidence leave too few offers, and then it says how far short.
    made = synthesize["made"]["synonym"]
    assert 0 < made == synthesize["synthetic"] <= synthesize["budget"]
    assert synthesize["budget_met"] == (made == synthesize["budget"]) == (not synthesize["short"])
    assert len(_jsonl(out / "synthesize" / "refined")) == synthesize["refined"] == rebalance["kept"] + made
    assert "visual synthesis skipped (needs --image-model, --caption-model and --llm)" in err
    assert "rewrite synthesis skipped (needs --llm)" in err
    for stage in STAGES:
        assert json.loads((out / stage / run.DONE).read_text())["key"]
    # Not a terminal here, so progress comes as plain timestamped lines with a rate.
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d stats: tagging: [\d,]+ records in \d+:\d\d:\d\d "
                     r"\([\d,.]+ records/s\)$", err, re.M)
    assert re.search(r"rebalance: [\d,]+ records in", err)
    assert (out / "report" / "index.html").exists()


def test_rerun_skips_what_is_up_to_date_and_reruns_what_an_option_changed(adr_run, spark, tmp_path, capsys):
    src, _, _ = adr_run
    out = tmp_path / "run"
    shutil.copytree(src, out)  # the stage keys hold no output path, so a moved run dir stays valid
    argv = ["--input", *_input_of(src), "--output", str(out), "--images-root", str(COCO_IMAGES), *NLP_ARGS]
    refined = sorted((out / "synthesize" / "refined").glob("*.jsonl"))[0]
    mtime = refined.stat().st_mtime_ns
    outcome, err = _run(argv, spark, capsys)
    assert outcome == dict.fromkeys(STAGES, "skipped")
    assert "stats: up to date, skipped" in err and refined.stat().st_mtime_ns == mtime

    outcome, _ = _run(argv + ["--seed", "7"], spark, capsys)
    assert outcome == {"stats": "skipped", "rebalance": "ran", "synthesize": "ran", "report": "ran"}
    assert json.loads((out / "rebalance" / "summary.json").read_text())["seed"] == 7


def _input_of(run_dir):
    return json.loads((run_dir / "stats" / "manifest.json").read_text())["input"]["files"]


def test_interrupted_stages_resume_from_what_they_finished(adr_run, spark, tmp_path, capsys):
    src, _, _ = adr_run
    out = tmp_path / "run"
    shutil.copytree(src, out)
    argv = ["--input", *_input_of(src), "--output", str(out), "--images-root", str(COCO_IMAGES), *NLP_ARGS]
    synthetic_before = _jsonl(out / "synthesize" / "synthetic")
    manifest_before = json.loads((out / "stats" / "manifest.json").read_text())

    # As if killed after synthesize's rounds but before its outputs, and stats after extraction.
    for path in ("synthesize/_ADR_DONE.json", "synthesize/synthetic", "synthesize/refined",
                 "synthesize/summary.json", "stats/_ADR_DONE.json", "stats/manifest.json", "stats/dictionary"):
        target = out / path
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    outcome, err = _run(argv, spark, capsys)
    assert outcome == {"stats": "resumed", "rebalance": "skipped", "synthesize": "resumed", "report": "skipped"}
    assert "entities/ and invalid/ of the same input and parameters reused" in err
    manifest = json.loads((out / "stats" / "manifest.json").read_text())
    ignore = ("seconds", "dictionary")  # the dictionary is written again: new part names, same counts
    assert {k: v for k, v in manifest.items() if k not in ignore} == \
        {k: v for k, v in manifest_before.items() if k not in ignore}
    assert {k: v for k, v in manifest["dictionary"].items() if k != "parts"} == \
        {k: v for k, v in manifest_before["dictionary"].items() if k != "parts"}
    summary = json.loads((out / "synthesize" / "summary.json").read_text())
    assert summary["rounds_reused"] == summary["rounds"] >= 1
    assert _jsonl(out / "synthesize" / "synthetic") == synthetic_before


def test_changed_input_reruns_every_stage_and_config_file_drives_the_run(spark, coco_jsonl, tmp_path, capsys):
    lines = coco_jsonl.read_text().splitlines()
    data = tmp_path / "corpus.jsonl"
    data.write_text("\n".join(lines[:400]) + "\n")
    out = tmp_path / "run"
    config = tmp_path / "adr.toml"
    config.write_text(f'input = ["{data}"]\noutput = "{out}"\nseed = 3\n'
                      f'[synthesize]\nmix = "synonym=1"\n[report]\nexamples = 2\n'
                      + (f'nlp = "{NLP_ARGS[1]}"\n' if NLP_ARGS else ""))
    assert _run(["--config", str(config)], spark, capsys)[0] == dict.fromkeys(STAGES, "ran")
    assert json.loads((out / "rebalance" / "summary.json").read_text())["seed"] == 3
    assert _run(["--config", str(config)], spark, capsys)[0] == dict.fromkeys(STAGES, "skipped")

    data.write_text("\n".join(lines[:401]) + "\n")
    assert _run(["--config", str(config)], spark, capsys)[0] == dict.fromkeys(STAGES, "ran")
    assert json.loads((out / "stats" / "manifest.json").read_text())["records"] == 401


def test_options_reach_their_stages_from_config_and_command_line(tmp_path):
    from pipelines.rebalance import job as beam_rebalance
    from pipelines.stats import job as spark_stats
    from pipelines.synthesize import job as beam_synthesize

    path = tmp_path / "adr.toml"
    path.write_text('input = ["x.jsonl"]\nseed = 3\nmaster = "local[1]"\nreverse-index = true\n'
                    '[rebalance]\nseed = 5\ntarget-size = 100\n[synthesize]\nmix = "synonym=1"\n'
                    '[beam]\ndirect_num_workers = 1\n')
    config = run.load_config(str(path))
    run.check_config(config, str(path))
    values = {s: run.stage_values(stages()[s], {}, config) for s in ("stats", "rebalance", "synthesize")}
    assert values == {"stats": {"master": "local[1]", "reverse_index": True},
                      "rebalance": {"seed": 5, "target_size": 100},
                      "synthesize": {"seed": 3, "mix": "synonym=1"}}
    cli = vars(run.parser().parse_known_args(["--seed", "9", "--target-size", "7"])[0])
    rebalance = run.to_argv(stages()["rebalance"], run.stage_values(stages()["rebalance"], cli, config))
    args, beam_args = beam_rebalance.configure(
        ["--input", "x", "--dictionary", "d", "--output", "o", *rebalance, *run.beam_argv([], config)])
    assert (args.seed, args.target_size, beam_args) == (9, 7, ["--direct_num_workers=1"])
    stats, _ = spark_stats.configure(["--input", "x", "--output", "o",
                                      *run.to_argv(stages()["stats"], values["stats"])])
    assert stats.master == "local[1]" and stats.reverse_index
    synth, _ = beam_synthesize.configure(["--rebalanced", "r", "--dictionary", "d", "--output", "o",
                                           *run.to_argv(stages()["synthesize"], values["synthesize"])])
    assert (synth.seed, synth.mix) == (3, "synonym=1")


@pytest.mark.parametrize("text, message", [
    ('sed = 3\n', "unknown option 'sed'"),
    ('[stats]\nseed = 3\n', "[stats] has no option 'seed'"),
    ('[rebalance]\npubsub-subscription = "s"\n', "has no option 'pubsub-subscription'"),
    ('seed = [\n', "adr.toml:"),
])
def test_bad_config_is_a_one_line_error(tmp_path, text, message, capsys):
    from pipelines.cli import main

    path = tmp_path / "adr.toml"
    path.write_text(text)
    assert main(["run", "--config", str(path), "--input", "x", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith("adr run: error:")


def test_run_without_input_is_a_one_line_error(tmp_path, capsys):
    from pipelines.cli import main

    assert main(["run", "--output", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == \
        "adr run: error: adr run needs --input and --output (on the command line or in --config)"


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_plain_lines_give_count_rate_and_time_left():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress("rebalance", total=1000, stream=stream, interval=10, clock=clock)
    clock.now = 5
    progress.update(100)           # within the interval: nothing written yet
    assert stream.getvalue() == ""
    clock.now = 20
    progress.update(400)
    line = stream.getvalue().splitlines()[-1]
    assert line.endswith("rebalance: 400/1,000 records  40%  20.0 records/s  0:00:30 left")
    clock.now = 50
    progress.close()
    assert stream.getvalue().splitlines()[-1].endswith("rebalance: 400 records in 0:00:50 (8.0 records/s)")


def test_progress_on_a_terminal_redraws_one_line_and_estimates_from_a_fraction():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    clock, stream = FakeClock(), Terminal()
    progress = Progress("stats: tagging", stream=stream, clock=clock)
    clock.now = 10
    progress.update(2500, fraction=0.25)   # bytes read of the input's size
    assert stream.getvalue() == "\rstats: tagging: 2,500 records  25%  250.0 records/s  0:00:30 left\033[K"


def test_the_readme_config_example_is_valid(tmp_path):
    from tests.conftest import ROOT

    text = (ROOT / "README.md").read_text()
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "adr.toml"
    path.write_text(example)
    config = run.load_config(str(path))
    run.check_config(config, str(path))
    assert run.stage_values(stages()["rebalance"], {}, config)["target_size"] == 4500
    assert run.beam_argv([], config) == ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def test_a_missing_model_fails_before_any_stage_runs(tmp_path, coco_jsonl, capsys):
    from pipelines.cli import main

    out = tmp_path / "run"
    assert main(["run", "--input", str(coco_jsonl), "--output", str(out), "--llm", str(tmp_path / "no-llm")]) == 2
    assert capsys.readouterr().err.strip().endswith(f"model {str(tmp_path / 'no-llm')!r}: no such directory")
    assert not out.exists()


def test_a_run_killed_after_tagging_resumes_without_tagging_again(coco_jsonl, spark, tmp_path, capsys):
    """A real interruption: `adr run` in its own process group, killed (SIGKILL) once stats has
    written entities/ and before it finishes; the rerun resumes stats from the extraction."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    argv = ["--input", str(coco_jsonl), "--output", str(out), *NLP_ARGS]
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", *argv, "--master", "local[1]"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    extracted = out / "stats" / "extracted.json"
    deadline = time.time() + 240
    while not extracted.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert extracted.exists() and not (out / "stats" / run.DONE).exists()

    outcome = run.run(argv + ["--master", "local[1]"], spark=spark)
    assert outcome == {"stats": "resumed", "rebalance": "ran", "synthesize": "ran", "report": "ran"}
    assert "entities/ and invalid/ of the same input and parameters reused" in capsys.readouterr().err
    manifest = json.loads((out / "stats" / "manifest.json").read_text())
    assert manifest["records"] + manifest["invalid"] == manifest["elements_read"] == len(coco_jsonl.read_text().splitlines())


def test_an_option_no_stage_and_no_beam_knows_is_an_error(tmp_path, coco_jsonl, capsys):
    from pipelines.cli import main

    out = tmp_path / "run"
    assert main(["run", "--input", str(coco_jsonl), "--output", str(out), "--sed", "3"]) == 2
    assert "unknown option(s) --sed: not an option of a stage, nor a Beam pipeline option" in capsys.readouterr().err
    assert not out.exists()
    config = {"beam": {"direct_num_workers": 2, "save_main_session": True, "streaming": False}}
    assert run.beam_argv(["--runner", "DirectRunner"], config) == [
        "--direct_num_workers=2", "--save_main_session", "--runner", "DirectRunner"]
    with pytest.raises(ConfigError, match="adr run is a batch job"):
        run.beam_argv(["--streaming"], {})
