"""The README's commands against the parsers they describe, so the two cannot drift apart."""

import re

from pipelines.stages import in_run, stages
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
FLAG = r"(?<![\w-])--[a-z][a-z0-9_-]*[a-z0-9]"


def beam_flags() -> set[str]:
    from apache_beam.options.pipeline_options import PipelineOptions

    return {f"--{dest}" for dest in PipelineOptions([]).get_all_options()}


def sections() -> dict[str, str]:
    """`adr <stage>` -> the text of its section (a `### `adr <stage>`` heading to the next heading)."""
    parts = re.split(r"^#+ .*$", README, flags=re.M)
    headings = re.findall(r"^#+ .*$", README, flags=re.M)
    found = {}
    for heading, text in zip(headings, parts[1:]):
        m = re.match(r"### `adr ([a-z ]+)`", heading)
        if m:
            found[m.group(1)] = text
    return found


def command_lines(text: str, stage: str) -> list[str]:
    """Each `adr <stage> ...` command: in an indented block (its more indented lines continue it)
    or in inline code."""
    found = [span for span in re.findall(r"`(adr [^`]+)`", text) if re.match(rf"adr {stage}(\s|$)", span)]
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(rf"(\s{{4,}})(\$ )?adr {stage}(\s|$)", line)
        if m:
            depth = len(m.group(1))
            rest = []
            for later in lines[i + 1:]:
                if len(later) - len(later.lstrip()) <= depth or not later.strip():
                    break
                rest.append(later)
            found.append(" ".join([line, *rest]))
    return found


def prose(text: str) -> str:
    """The text less other programs' command lines (LLaVA's train.py, python -m scripts...)."""
    kept = [line for line in text.splitlines() if not re.match(r"\s{4,}(?!\$? ?adr )\S", line)]
    return re.sub(r"`[^`\n]*`", lambda m: m.group(0) if re.match(r"`(adr |--)", m.group(0)) else " ",
                  "\n".join(kept))


def test_every_stage_has_a_section_and_every_section_a_stage():
    assert set(sections()) == set(stages())


def test_each_stage_section_names_every_option_of_its_parser():
    for name, text in sections().items():
        named = set(re.findall(FLAG, text))
        missing = sorted(flag for action in stages()[name].parser().arguments for flag in action.option_strings[-1:]
                         if flag.startswith("--") and flag != "--help" and flag not in named)
        assert not missing, f"adr {name}: README does not name {missing}"


def test_commands_in_the_readme_use_only_flags_their_stage_takes():
    beam = beam_flags()
    for name, stage in stages().items():
        own = stage.parser().flags | (beam if stage.beam else set())
        for line in command_lines(README, name):
            wrong = sorted(set(re.findall(FLAG, line)) - own)
            assert not wrong, f"README: `{line.strip()}`: adr {name} has no {wrong}"


def test_adr_run_examples_use_flags_of_its_stages_or_beam():
    from pipelines import run

    own = {f for s in in_run() for f in s.parser().flags} | {f"--{key}" for key in (*run.RUN_KEYS, "config")}
    beam = beam_flags()
    lines = command_lines(README, "run")
    assert lines, "README shows no `adr run` command"
    for line in lines:
        wrong = sorted(set(re.findall(FLAG, line)) - own - beam)
        assert not wrong, f"README: `{line.strip()}`: adr run has no {wrong}"


def test_every_flag_the_stage_sections_name_is_a_real_option():
    """Of a stage, of Beam, or of a benchmark or script the text points to."""
    beam = beam_flags()
    tools = {flag for path in [*ROOT.glob("benchmarks/*.py"), *ROOT.glob("scripts/*.py")]
             for flag in re.findall(r"add_argument\(\"(--[a-z][a-z0-9-]*)\"", path.read_text())}
    known = {f for s in stages().values() for f in s.parser().flags} | beam | tools | {"--config", "--force"}
    text = prose("".join(sections().values()))
    unknown = sorted(set(re.findall(FLAG, text)) - known)
    assert not unknown, f"README names options no stage has: {unknown}"
