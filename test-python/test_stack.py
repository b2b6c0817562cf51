"""ChronosTrainingStack from Python: the stack for environment=stage, from context (@chronos/training-infra:environment)."""
import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from chronos_training_infra import ChronosTrainingStack
from support import bucket_name_join, export_names, only, template_exports


@pytest.fixture(scope="module")
def stage():
    app = cdk.App(context={"@chronos/training-infra:environment": "stage"})
    stack = ChronosTrainingStack(app, "ChronosTraining")
    return stack, Template.from_stack(stack)


def test_stack_name_and_environment(stage):
    stack, _ = stage
    assert stack.stack_name == "ChronosTraining-stage-Stack"
    assert stack.foundation.environment_name == "stage"
    assert stack.foundation.cost_center == "train"
    # No env and no account or region context: the stack is environment-agnostic (issue 31: no silent us-east-1).
    assert cdk.Token.is_unresolved(stack.region)
    assert cdk.Token.is_unresolved(stack.account)


def test_exports(stage):
    _, template = stage
    assert template_exports(template.to_json()) == export_names("stage")
    outputs = template.find_outputs("*")
    assert len(outputs) == 12
    template.has_output("*", {"Export": {"Name": "ChronosTraining-stage-LaunchTemplateId"}})
    # The version chronos-training launches (a deploy that changes the template adds one; the default stays 1).
    template.has_output("*", {"Export": {"Name": "ChronosTraining-stage-LaunchTemplateVersion"},
                              "Value": {"Fn::GetAtt": [Match.any_value(), "LatestVersionNumber"]}})
    template.has_output("*", {"Export": {"Name": "ChronosTraining-stage-Environment"}, "Value": "stage"})
    template.has_output("*", {"Export": {"Name": "ChronosTraining-stage-CostCenter"}, "Value": "train"})


def test_bucket_name(stage):
    _, template = stage
    bucket = only(template.to_json(), "AWS::S3::Bucket")
    assert bucket["Properties"]["BucketName"] == bucket_name_join("stage")
    assert bucket["DeletionPolicy"] == "Retain"


def test_description_and_tags(stage):
    _, template = stage
    t = template.to_json()
    assert t["Description"] == "Chronos Training Infrastructure (stage) - VPC, S3, IAM, Security Groups"
    tags = {x["Key"]: x["Value"] for x in only(t, "AWS::EC2::VPC")["Properties"]["Tags"]}
    assert {k: tags[k] for k in ("Project", "Environment", "CostCenter", "ManagedBy")} == {
        "Project": "Chronos-Training", "Environment": "stage", "CostCenter": "train", "ManagedBy": "CDK"}


def test_props_win_over_context():
    app = cdk.App(context={"@chronos/training-infra:environment": "stage"})
    stack = ChronosTrainingStack(app, "P", environment_name="prod", cost_center="serve",
                                 env=cdk.Environment(account="123456789012", region="eu-west-1"))
    t = Template.from_stack(stack).to_json()
    assert template_exports(t) == export_names("prod")
    assert only(t, "AWS::S3::Bucket")["Properties"]["BucketName"] == "chronos-training-prod-123456789012-eu-west-1"
