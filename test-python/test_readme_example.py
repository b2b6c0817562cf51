"""The README's Python example ("### The foundation inside your own stack, in Python"),
extracted from README.md at test time and run as a script, as a user would run it."""
from support import bucket_name_join, export_names, only, read_json, template_exports


def test_readme_python_example_runs(readme_python_run):
    run = readme_python_run
    assert run.returncode == 0, (
        f"README Python example failed (exit {run.returncode}):\n--- code ---\n{run.code}"
        f"--- stdout ---\n{run.stdout}\n--- stderr ---\n{run.stderr}")


def test_readme_python_example_synthesizes_the_foundation(readme_python_run):
    run = readme_python_run
    assert run.returncode == 0, f"README Python example failed:\n{run.stderr}"
    assert run.stdout.split() == export_names("stage")
    manifest = read_json(run.outdir / "manifest.json")
    stacks = [name for name, a in manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack"]
    assert len(stacks) == 1, f"expected one stack in {run.outdir}, found {stacks}"
    template = read_json(run.outdir / manifest["artifacts"][stacks[0]]["properties"]["templateFile"])

    assert template_exports(template) == export_names("stage")
    bucket = only(template, "AWS::S3::Bucket")
    # The stack of the example is environment-agnostic: the region is a token.
    assert bucket["Properties"]["BucketName"]["Fn::Join"][1][0] == "chronos-training-stage-"
    assert bucket["Properties"]["BucketName"] != bucket_name_join("stage", "us-east-1")
    assert only(template, "AWS::EC2::VPC")["Properties"]["CidrBlock"] == "10.42.0.0/16"
    assert only(template, "AWS::EC2::Subnet")["Properties"]["AvailabilityZone"] == "us-east-1a"
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["ModelArtifacts"]["ExpirationInDays"] == 120
