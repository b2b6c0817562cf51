"""The guardrails from Python: the reaper's bundled handler ships in the wheel, and
the aspect, the launch template and the budget take keyword props."""
import base64
import gzip
import json
import tempfile
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from chronos_training_infra import (
    BudgetLaunchers,
    TrainingBudget,
    TrainingLaunchTemplate,
    TrainingRunReaper,
    ZeroIdleCostChecker,
)
from support import only


def test_reaper_handler_is_in_the_wheel_and_becomes_an_asset():
    with tempfile.TemporaryDirectory() as outdir:
        app = cdk.App(outdir=outdir)
        stack = cdk.Stack(app, "ReaperStack")
        TrainingRunReaper(stack, "Reaper", environment_name="dev", max_run_lifetime=cdk.Duration.hours(6))
        assembly = app.synth()
        template = assembly.get_stack_by_name("ReaperStack").template
        code = only(template, "AWS::Lambda::Function")["Properties"]["Code"]
        assert "S3Key" in code
        asset_hash = code["S3Key"].split(".")[0]
        manifest = json.loads((Path(outdir) / "ReaperStack.assets.json").read_text())
        source = manifest["files"][asset_hash]["source"]["path"]
        handler = Path(outdir) / source / "index.js"
        assert handler.is_file(), f"no bundled handler at {handler}"
        assert "TerminateInstancesCommand" in handler.read_text()


def synthesized_errors(app: cdk.App, stack_name: str) -> list[str]:
    """The error annotations of a stack, as `cdk synth` reports them: read from the cloud assembly's manifest.json.

    Not Annotations.find_error: it returns cloud_assembly_schema.MetadataEntry structs by reference, and jsii's Python
    runtime (1.142.0) intermittently fails to deserialize them ("ValueError: Unknown interface:
    aws-cdk-lib.cloud_assembly_schema.MetadataEntry", as in aws/jsii#5213) even with that module imported: it failed
    one CI run in several. The manifest is plain JSON, and it is what the CDK CLI reads.
    """
    directory = Path(app.synth().directory)
    artifact = json.loads((directory / "manifest.json").read_text())["artifacts"][stack_name]
    # aws-cdk-lib writes a stack's metadata to a file of its own, named by the manifest, or inline (older schemas).
    metadata = dict(artifact.get("metadata", {}))
    if "additionalMetadataFile" in artifact:
        metadata.update(json.loads((directory / artifact["additionalMetadataFile"]).read_text()))
    return [entry["data"] for entries in metadata.values() for entry in entries if entry["type"] == "aws:cdk:error"]


def test_zero_idle_cost_checker_reports_a_nat_gateway():
    with tempfile.TemporaryDirectory() as outdir:
        app = cdk.App(outdir=outdir)
        stack = cdk.Stack(app, "Checked")
        cdk.Aspects.of(stack).add(ZeroIdleCostChecker(allowed_resource_types=["AWS::KMS::Key"]))
        ec2.CfnNatGateway(stack, "Nat", subnet_id="subnet-1")
        errors = synthesized_errors(app, "Checked")
    assert len(errors) == 1, errors
    assert "AWS::EC2::NatGateway" in errors[0]
    assert not hasattr(ZeroIdleCostChecker, "BILLED_WHILE_IDLE")


def test_zero_idle_cost_checker_add_billed_while_idle():
    with tempfile.TemporaryDirectory() as outdir:
        app = cdk.App(outdir=outdir)
        stack = cdk.Stack(app, "Checked")
        checker = ZeroIdleCostChecker()
        checker.add_billed_while_idle("AWS::MemoryDB::Cluster", "node-hours")
        cdk.Aspects.of(stack).add(checker)
        cdk.CfnResource(stack, "Cache", type="AWS::MemoryDB::Cluster")
        errors = synthesized_errors(app, "Checked")
    assert len(errors) == 1, errors
    assert "node-hours" in errors[0]


def test_launch_template_and_budget_take_keyword_props():
    stack = cdk.Stack(cdk.App(), "Guardrails")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=1, nat_gateways=0, restrict_default_security_group=False,
                  subnet_configuration=[ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC)])
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    template = TrainingLaunchTemplate(
        stack, "LaunchTemplate", environment_name="dev", cost_center="train",
        instance_profile=iam.InstanceProfile(stack, "Profile", role=role),
        security_group=ec2.SecurityGroup(stack, "Sg", vpc=vpc), spot=True, max_run_lifetime=cdk.Duration.hours(2),
        bucket=s3.Bucket(stack, "Bucket"))
    plain = TrainingLaunchTemplate(
        stack, "PlainLaunchTemplate", environment_name="stage", cost_center="train",
        instance_profile=iam.InstanceProfile.from_instance_profile_name(stack, "Plain", "plain"),
        security_group=ec2.SecurityGroup(stack, "PlainSg", vpc=vpc), run_agent=False)
    TrainingBudget(stack, "Budget", environment_name="dev", monthly_limit_usd=100,
                   notification_emails=["ml-team@example.com"],
                   deny_run_instances_at_limit=BudgetLaunchers(roles=["ChronosLauncher"]))
    assert template.max_run_lifetime.to_hours() == 2
    assert template.run_agent is True and plain.run_agent is False
    synthesized = Template.from_stack(stack)
    templates = [r["Properties"] for r in synthesized.to_json()["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    data = next(t for t in templates if t["LaunchTemplateName"].endswith("-dev"))["LaunchTemplateData"]
    assert [s["ResourceType"] for s in data["TagSpecifications"]] == ["instance", "volume", "spot-instances-request"]
    # The run agent (docs/RUNS.md): multipart user data and instance tags in the instance metadata; not without it.
    assert data["MetadataOptions"]["InstanceMetadataTags"] == "enabled"
    # gzip-compressed at synthesis (cloud-init uncompresses it): a literal, whose archive is MIME multipart.
    assert "multipart/mixed" in gzip.decompress(base64.b64decode(data["UserData"])).decode()
    plain_data = next(t for t in templates if t["LaunchTemplateName"].endswith("-stage"))["LaunchTemplateData"]
    assert "UserData" not in plain_data and "InstanceMetadataTags" not in plain_data["MetadataOptions"]
    synthesized.resource_count_is("AWS::Budgets::BudgetsAction", 1)
