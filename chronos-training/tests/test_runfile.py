"""The run file (chronos.yaml): its validation (the field, the value, the rule), the flags over it, its JSON Schema
(one source: runfile.FIELDS; the committed copies must match), `init`, and `run` reading it; the --env-var warning
and --secret's existence check, against moto in process."""
import dataclasses
import json
import os

import pytest
import yaml

import chronos_training
from chronos_training import runfile
from chronos_training.cli import main_with
from chronos_training.commands import RunOptions
from chronos_training.errors import ChronosError
from conftest import Recording
from moto_world import BUCKET
from test_api import aws  # noqa: F401  (the module's foundation on moto in process)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def check(doc):
    return runfile.validate(doc, "chronos.yaml")


@pytest.mark.parametrize("doc, message", [
    ({"maxAttempts": "three"}, 'chronos.yaml: maxAttempts: "three" is not an integer >= 1'),
    ({"maxAttempts": 0}, "chronos.yaml: maxAttempts: 0 is not an integer >= 1"),
    ({"maxAttempts": True}, "chronos.yaml: maxAttempts: true is not an integer >= 1"),
    ({"onDemandAfterInterruptions": -1}, "chronos.yaml: onDemandAfterInterruptions: -1 is not an integer >= 0"),
    ({"market": "cheap"}, 'chronos.yaml: market: "cheap" is not one of spot, on-demand, spot-fallback'),
    ({"maxRunLifetime": "6 hours"}, 'chronos.yaml: maxRunLifetime: "6 hours" is not a duration such as 6h, 90m or '
                                    '1h30m'),
    ({"waitForCapacity": 6}, "chronos.yaml: waitForCapacity: 6 is not a duration such as 6h, 90m or 1h30m"),
    ({"command": []}, "chronos.yaml: command: [] is not a command: a string, or a non-empty list of strings"),
    ({"command": "python 'train.py"}, "chronos.yaml: command: \"python 'train.py\" is not a command line (No closing "
                                      "quotation)"),
    ({"env": {"CHRONOS_RUN_ID": "x"}}, 'chronos.yaml: env: {"CHRONOS_RUN_ID": "x"} has the name "CHRONOS_RUN_ID", '
                                       "which is not an environment variable's name (^[A-Za-z_][A-Za-z0-9_]*$, not "
                                       "CHRONOS_*)"),
    ({"env": {"A": [1]}}, 'chronos.yaml: env: {"A": [1]} has A: [1], which is not a string or a number'),
    ({"secrets": {"WANDB_API_KEY": "a/b"}}, 'chronos.yaml: secrets: {"WANDB_API_KEY": "a/b"} has WANDB_API_KEY: '
                                            '"a/b", which is not a parameter name (^[A-Za-z0-9_.-]{1,200}$)'),
    ({"checkpoints": {"keep": 0}}, 'chronos.yaml: checkpoints: {"keep": 0} keep: 0 is not an integer >= 1'),
    ({"setup": {"cacheFiles": ["a"]}}, 'chronos.yaml: setup: {"cacheFiles": ["a"]} is not a command string, or a '
                                       'mapping with command (and cacheFiles)'),
    ({"instanceTypes": [1]}, "chronos.yaml: instanceTypes: [1] is not a non-empty list of non-empty strings"),
])
def test_a_bad_field_is_named_with_its_value_and_rule(doc, message):
    with pytest.raises(ChronosError) as e:
        check(doc)
    assert e.value.message == message and e.value.exit_code == 2


def test_an_unknown_field_is_refused_with_the_known_ones():
    with pytest.raises(ChronosError) as e:
        check({"name": "x", "instance_type": "g5.xlarge"})
    assert e.value.message.startswith('chronos.yaml: unknown field "instance_type" (known fields: environment, name, '
                                      "command, instanceTypes,")
    assert "secrets" in e.value.message and "checkpoints" in e.value.message


def test_every_field_maps_onto_its_runoptions_attribute():
    attributes = {f.name for f in dataclasses.fields(RunOptions)}
    for field in runfile.FIELDS:
        assert field.attribute in attributes, field.name
    got = check({"environment": "dev", "name": "n", "command": "python train.py --lr '1e-3'",
                 "instanceTypes": "g5.xlarge, g6.xlarge", "image": "ami-0123", "market": "spot", "maxRunLifetime": "1h30m",
                 "maxAttempts": 4, "onDemandAfterInterruptions": 0, "waitForCapacity": "6h", "directory": "src",
                 "setup": {"command": "uv sync", "cacheFiles": ["uv.lock"]}, "container": "img:1",
                 "env": {"EPOCHS": 10, "LR": "0.1"}, "secrets": {"WANDB_API_KEY": "wandb"},
                 "checkpoints": {"keep": 3}})
    assert got == {"env": "dev", "name": "n", "command": ["python", "train.py", "--lr", "1e-3"],
                   "instance_types": ["g5.xlarge", "g6.xlarge"], "image_id": "ami-0123", "market": "spot",
                   "max_run_lifetime": "1h30m", "max_attempts": 4, "on_demand_after_interruptions": 0,
                   "wait_for_capacity": "6h", "directory": "src", "setup": "uv sync", "setup_cache_files": ["uv.lock"],
                   "container": "img:1", "env_vars": ["EPOCHS=10", "LR=0.1"], "secrets": ["WANDB_API_KEY=wandb"],
                   "keep_checkpoints": 3}
    assert check({"setup": "pip install -r requirements.txt"}) == {"setup": "pip install -r requirements.txt"}
    RunOptions(**got)


def test_flags_win_and_mappings_merge_by_name():
    merged = runfile.merge({"name": "file", "env_vars": ["A=1", "B=2"], "secrets": ["K=a"], "max_attempts": 2},
                           {"name": "flag", "env_vars": ["B=3"], "secrets": None, "max_attempts": None})
    assert merged == {"name": "flag", "env_vars": ["A=1", "B=3"], "secrets": ["K=a"], "max_attempts": 2}


def test_the_committed_schemas_are_the_field_tables(tmp_path):
    text = runfile.schema_text()
    for path in (os.path.join(ROOT, "docs", "chronos.schema.json"),
                 os.path.join(os.path.dirname(runfile.__file__), "chronos.schema.json")):
        with open(path) as f:
            assert f.read() == text, "%s is stale: regenerate it with chronos-training schema" % path
    schema = json.loads(text)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert list(schema["properties"]) == [f.name for f in runfile.FIELDS]
    assert schema["additionalProperties"] is False
    rec = Recording()
    assert main_with(["schema"], rec.io) == 0 and rec.stdout() == text


def test_init_writes_an_example_that_validates_round_trips_and_is_not_overwritten(tmp_path):
    path = str(tmp_path / "chronos.yaml")
    rec = Recording()
    assert main_with(["init", "--file", path], rec.io) == 0, rec.stderr()
    text = open(path).read()
    assert text.startswith("# yaml-language-server: $schema=%s\n" % runfile.SCHEMA_URL)
    options = runfile.read(path)
    assert options["command"] == ["python", "train.py"] and options["max_attempts"] == 3
    assert options["directory"] == str(tmp_path)
    RunOptions(**options)
    # Every field is in it, set or commented out.
    for field in runfile.FIELDS:
        assert ("\n%s:" % field.name) in text or ("\n# %s:" % field.name) in text, field.name
    again = Recording()
    assert main_with(["init", "--file", path], again.io) == 2
    assert again.stderr() == "chronos-training: error: init: %s exists; --force replaces it\n" % path
    open(path, "w").write("name: mine\n")
    assert main_with(["init", "--file", path, "--force"], Recording().io) == 0
    assert open(path).read() == text


def test_yaml_that_is_not_yaml_or_not_a_mapping(tmp_path):
    path = tmp_path / "chronos.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ChronosError, match=r"^.*chronos.yaml: not valid YAML"):
        runfile.read(str(path))
    path.write_text("- a\n- b\n")
    with pytest.raises(ChronosError, match=r"chronos.yaml: the file is not a mapping of fields"):
        runfile.read(str(path))
    path.write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(ChronosError, match="not valid YAML"):
        runfile.read(str(path))


def run_cli(aws, args, cwd):
    rec = Recording()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        code = main_with(args, rec.io, clients=lambda _p, _r: aws, poll_seconds=0)
    finally:
        os.chdir(here)
    return code, rec


def spec_of(aws, run_id):
    return json.loads(aws.s3.get_object(Bucket=BUCKET, Key="dev/runs/%s/spec.json" % run_id)["Body"].read())


def test_run_reads_chronos_yaml_from_the_working_directory_and_flags_override_it(aws, tmp_path):
    (tmp_path / "train.py").write_text("print('hi')\n")
    (tmp_path / "chronos.yaml").write_text(
        "environment: dev\nname: from-file\ncommand: python train.py --epochs 2\ninstanceTypes: [t3.micro]\n"
        "market: on-demand\nenv:\n  EPOCHS: 2\n  LR: '0.1'\nmaxRunLifetime: 1h\n")
    code, rec = run_cli(aws, ["run", "--detach"], str(tmp_path))
    assert code == 0, rec.stderr()
    spec = spec_of(aws, rec.stdout().strip())
    assert (spec["name"], spec["command"], spec["env"], spec["maxRunLifetimeSeconds"]) == (
        "from-file", ["python", "train.py", "--epochs", "2"], {"EPOCHS": "2", "LR": "0.1"}, 3600)
    code, rec = run_cli(aws, ["run", "--detach", "--name", "flag", "--env-var", "LR=0.2", "--", "python", "other.py"],
                        str(tmp_path))
    assert code == 0, rec.stderr()
    spec = spec_of(aws, rec.stdout().strip())
    assert (spec["name"], spec["command"], spec["env"]) == ("flag", ["python", "other.py"], {"EPOCHS": "2", "LR": "0.2"})


def test_a_bad_run_file_stops_run_before_any_upload_or_launch(aws, tmp_path):
    (tmp_path / "chronos.yaml").write_text("environment: dev\ncommand: [python, train.py]\nmaxAttempts: three\n")
    mark = len(aws.calls)
    code, rec = run_cli(aws, ["run", "--detach"], str(tmp_path))
    assert code == 2
    assert rec.stderr() == 'chronos-training: error: chronos.yaml: maxAttempts: "three" is not an integer >= 1\n'
    assert aws.calls[mark:] == []


def test_a_run_file_named_with_file_and_its_directory(aws, tmp_path):
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "train.py").write_text("print(1)\n")
    (tmp_path / "job" / "other.yaml").write_text("environment: dev\ncommand: [python, train.py]\n"
                                                  "instanceTypes: [t3.micro]\n")
    code, rec = run_cli(aws, ["run", "--detach", "--file", "job/other.yaml"], str(tmp_path))
    assert code == 0, rec.stderr()
    manifest = json.loads(aws.s3.get_object(Bucket=BUCKET, Key=spec_of(aws, rec.stdout().strip())["code"]["manifestKey"])
                          ["Body"].read())
    assert [f["path"] for f in manifest["files"]] == ["other.yaml", "train.py"]
    code, rec = run_cli(aws, ["run", "--detach", "--file", "nope.yaml"], str(tmp_path))
    assert (code, rec.stderr()) == (2, "chronos-training: error: --file nope.yaml: no such file\n")


def test_an_env_var_that_looks_secret_warns_once_pointing_to_secret(aws, tmp_path):
    (tmp_path / "t.py").write_text("1\n")
    code, rec = run_cli(aws, ["run", "--env", "dev", "--detach", "--instance-types", "t3.micro", "--env-var",
                              "WANDB_API_KEY=abc", "--env-var", "db_password_x=1", "--env-var", "EPOCHS=1", "--",
                              "true"], str(tmp_path))
    assert code == 0
    warnings = [line for line in rec.stderr().splitlines() if "warning" in line]
    assert warnings == [
        "chronos-training: warning: --env-var WANDB_API_KEY looks like a secret: its value is stored in plain text in "
        "the run's spec.json; pass it with --secret WANDB_API_KEY=NAME (chronos-training secret set NAME)",
        "chronos-training: warning: --env-var db_password_x looks like a secret: its value is stored in plain text in "
        "the run's spec.json; pass it with --secret db_password_x=NAME (chronos-training secret set NAME)"]
    from chronos_training.run_secrets import looks_secret
    assert [n for n in ("HF_TOKEN", "AWS_SECRET", "MY_key", "PASSWORD", "KEYBOARD", "TOKENS", "SECRETARY", "EPOCHS")
            if looks_secret(n)] == ["HF_TOKEN", "AWS_SECRET", "MY_key", "PASSWORD"]


def test_secrets_are_checked_before_the_upload_and_only_their_names_reach_the_spec(aws, tmp_path):
    (tmp_path / "t.py").write_text("1\n")
    mark = len(aws.calls)
    code, rec = run_cli(aws, ["run", "--env", "dev", "--detach", "--instance-types", "t3.micro", "--secret",
                              "WANDB_API_KEY=wandb", "--", "true"], str(tmp_path))
    assert code == 2
    assert rec.stderr().endswith("chronos-training: error: secret WANDB_API_KEY: no parameter "
                                 "/chronos-training/dev/secrets/wandb; store it with: chronos-training secret set wandb "
                                 "--env dev\n")
    assert not [op for op, _ in aws.calls[mark:] if op in ("PutObject", "RunInstances", "CreateFleet")]
    # Checked without decryption: the launcher never reads a value.
    assert [p["WithDecryption"] for op, p in aws.calls[mark:] if op == "GetParameter"] == [False]
    aws.ssm.put_parameter(Name="/chronos-training/dev/secrets/plain", Value="v", Type="String")
    code, rec = run_cli(aws, ["run", "--env", "dev", "--detach", "--instance-types", "t3.micro", "--secret",
                              "X_TOKEN=plain", "--", "true"], str(tmp_path))
    assert code == 2 and "is a String, not a SecureString" in rec.stderr()

    import io
    import sys
    saved = sys.stdin
    sys.stdin = io.StringIO("s3cr3t-value-1234\n")
    try:
        code, rec = run_cli(aws, ["secret", "set", "wandb", "--env", "dev"], str(tmp_path))
    finally:
        sys.stdin = saved
    assert code == 0, rec.stderr()
    assert "s3cr3t" not in rec.stderr() + rec.stdout()
    stored = aws.ssm.get_parameter(Name="/chronos-training/dev/secrets/wandb", WithDecryption=True)["Parameter"]
    assert (stored["Value"], stored["Type"]) == ("s3cr3t-value-1234", "SecureString")
    put = [p for op, p in aws.calls if op == "PutParameter" and p["Name"].endswith("/secrets/wandb")][-1]
    assert (put["Tier"], put["Overwrite"], "KeyId" in put) == ("Standard", True, False)
    code, rec = run_cli(aws, ["run", "--env", "dev", "--detach", "--instance-types", "t3.micro", "--secret",
                              "WANDB_API_KEY=wandb", "--", "true"], str(tmp_path))
    assert code == 0, rec.stderr()
    spec = spec_of(aws, rec.stdout().strip())
    assert spec["secrets"] == {"WANDB_API_KEY": "wandb"}
    assert "s3cr3t" not in json.dumps(spec)
    code, rec = run_cli(aws, ["secret", "list", "--env", "dev"], str(tmp_path))
    assert (code, rec.stdout()) == (0, "plain\nwandb\n")


@pytest.mark.parametrize("args, message", [
    (["--secret", "WANDB_API_KEY"], "--secret 'WANDB_API_KEY' is not ENV_NAME=parameter-name"),
    (["--secret", "CHRONOS_X=a"], "--secret CHRONOS_X: CHRONOS_* variables are the agent's"),
    (["--secret", "A=../b"], "--secret A: '../b' is not a parameter name"),
])
def test_bad_secret_flags(aws, tmp_path, args, message):
    code, rec = run_cli(aws, ["run", "--env", "dev", "--detach", "--instance-types", "t3.micro"] + args +
                        ["--", "true"], str(tmp_path))
    assert code == 2 and message in rec.stderr()


def test_set_secret_refuses_what_ssm_would_refuse(aws):
    from chronos_training.run_secrets import set_secret
    with pytest.raises(ChronosError, match="at most 4096"):
        set_secret(aws, "dev", "big", "x" * 4097)  # a Standard parameter's value: 4 KB (SSM User Guide, tiers)
    with pytest.raises(ChronosError, match="not a parameter name"):
        set_secret(aws, "dev", "a/b", "x")
    with pytest.raises(ChronosError, match="empty"):
        set_secret(aws, "dev", "a", "")
    assert chronos_training.set_secret("dev", "api", "value-1", clients=aws) == 1
    assert chronos_training.set_secret("dev", "api", "value-2", clients=aws) == 2


def test_the_api_takes_the_run_files_fields_and_a_file(aws, tmp_path):
    (tmp_path / "train.py").write_text("print('hi')\n")
    (tmp_path / "chronos.yaml").write_text("environment: dev\ncommand: [python, train.py]\ninstanceTypes: [t3.micro]\n"
                                            "name: api-file\nsecrets: {WANDB_API_KEY: wandb}\n")
    aws.ssm.put_parameter(Name="/chronos-training/dev/secrets/wandb", Value="zzzz-value", Type="SecureString",
                          Overwrite=True)
    run = chronos_training.launch_file(str(tmp_path / "chronos.yaml"), clients=aws, name="override")
    spec = run.spec()
    assert (spec["name"], spec["secrets"], run.env) == ("override", {"WANDB_API_KEY": "wandb"}, "dev")
    run = chronos_training.launch(env="dev", command=["true"], instance_types=["t3.micro"], directory=str(tmp_path),
                                  secrets={"K_TOKEN": "wandb"}, clients=aws)
    assert run.spec()["secrets"] == {"K_TOKEN": "wandb"}


@pytest.mark.parametrize("readme", ["README.md", "chronos-training/README.md"])
def test_the_run_files_of_the_readmes_are_valid(readme, tmp_path):
    """Each ```yaml block of the READMEs is a run file that validates, as a reader would copy it."""
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / readme).read_text()
    blocks = re.findall(r"^```yaml\n(.*?)^```", text, flags=re.S | re.M)
    assert blocks, "%s has no run file example" % readme
    for i, block in enumerate(blocks):
        path = tmp_path / ("chronos-%d.yaml" % i)
        path.write_text(block)
        fields = runfile.read(str(path))
        assert fields.get("command"), fields
