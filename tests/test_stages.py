"""The stage contract: one registry serves `adr <stage>`, `adr run` and its --config; configs are read-only."""

import pickle
import subprocess
import sys

import pytest

from adr.errors import ConfigError
from pipelines import run
from pipelines.stage import is_switch
from pipelines.stages import in_run, stages


def test_adr_run_offers_every_offered_option_of_its_stages_and_none_they_keep_to_themselves():
    parser = run.parser()
    for stage in in_run():
        for action in stage.offered():
            argv = [action.option_strings[-1]] + ([] if is_switch(action) else
                                                  [str(action.choices[0]) if action.choices else "1"])
            parsed, rest = parser.parse_known_args(argv)
            assert action.dest in vars(parsed) and not rest, (stage.name, argv)
    # streaming, what `adr run` wires itself, resuming: the stage's own, not offered
    for flag in ("--window-secs", "--pubsub-subscription", "--watch-for-secs", "--dictionary", "--rebalanced",
                 "--resume", "--run"):
        assert parser.parse_known_args([flag, "1"])[1][:1] == [flag], flag


def test_a_config_table_takes_only_what_its_stage_offers():
    run.check_config({"rebalance": {"seed": 1, "buckets": 8}}, "adr.toml")
    with pytest.raises(ConfigError, match=r"\[rebalance\] has no option 'window-secs'"):
        run.check_config({"rebalance": {"window-secs": 3}}, "adr.toml")


def test_a_stage_config_is_read_only_and_travels_to_workers():
    config, beam_args = stages()["rebalance"].configure(
        ["--input", "x.jsonl", "--dictionary", "d", "--output", "o", "--seed", "7", "--direct_num_workers=2"])
    assert beam_args == ["--direct_num_workers=2"] and config.seed == 7 and config.window_secs == 60.0
    with pytest.raises(AttributeError, match="read-only"):
        config.seed = 8
    assert pickle.loads(pickle.dumps(config)) == config


def test_every_stage_of_adr_run_says_what_it_reads_and_writes():
    names = [s.name for s in in_run()]
    assert names == ["annotate", "stats", "rebalance", "synthesize", "report"]
    for stage in in_run():
        flags = stage.wiring(["in.jsonl"], "RUN")
        assert any(v.startswith("RUN") for v in flags), stage.name
        parser = stage.parser()
        given = [a for a in parser.arguments if a.required and not set(a.option_strings) & set(flags)]
        assert [a.dest for a in given] in ([], ["detector"]), stage.name  # `adr run` passes the user's model
        parser.parse_known_args(flags + [x for a in given for x in (a.option_strings[-1], "m")])  # its own flags
    assert {s.name for s in stages().values()} - set(names) == {"audit", "import coco"}


def test_a_stage_loads_only_its_own_engine():
    # `adr stats` (and spark-submit's driver) never pays for Beam and torch: a flag mistake is answered at once
    code = ("import sys; from pipelines.stages import stage; stage('stats'); "
            "print(sorted(m for m in ('apache_beam', 'torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
    code = code.replace("stage('stats')", "stage('rebalance')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "apache_beam" in out.stdout
