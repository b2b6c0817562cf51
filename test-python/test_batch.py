"""TrainingBatchQueue through the wheel: keyword props, a foundation's network and bucket, the grants."""
import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from chronos_training_infra import ChronosTrainingFoundation, TrainingBatchQueue, TrainingBatchQueueMultiNodeOptions
from support import resources_of


@pytest.fixture(scope="module")
def queue():
    stack = cdk.Stack(cdk.App(), "BatchStack", env=cdk.Environment(account="123456789012", region="us-east-1"))
    foundation = ChronosTrainingFoundation(stack, "Foundation", environment_name="dev")
    construct = TrainingBatchQueue(
        stack, "Batch",
        environment_name="dev",
        cost_center="train",
        vpc=foundation.vpc,
        subnets=foundation.public_subnets,
        security_group=foundation.security_group,
        bucket=foundation.bucket,
        image=ecs.ContainerImage.from_registry("public.ecr.aws/docker/library/python:3.12"),
        spot=True,
        maxv_cpus=64,
        max_run_lifetime=cdk.Duration.hours(6),
        multi_node=TrainingBatchQueueMultiNodeOptions(
            num_nodes=2, instance_type=ec2.InstanceType("g6.12xlarge"), maxv_cpus=96,
        ),
    )
    construct.grant_submit(iam.Role(stack, "Submitter", assumed_by=iam.AccountRootPrincipal()))
    return construct, Template.from_stack(stack).to_json()


def test_names(queue):
    construct, _ = queue
    assert construct.job_queue_name == "ChronosTraining-dev-Batch"
    assert construct.job_definition_name == "ChronosTraining-dev-Training"


def test_max_run_lifetime_sets_timeout_and_update_policy(queue):
    _, template = queue
    definitions = list(resources_of(template, "AWS::Batch::JobDefinition").values())
    assert {jd["Properties"]["Timeout"]["AttemptDurationSeconds"] for jd in definitions} == {6 * 3600}
    ces = list(resources_of(template, "AWS::Batch::ComputeEnvironment").values())
    assert all(ce["Properties"]["UpdatePolicy"] == {"JobExecutionTimeoutMinutes": 360, "TerminateJobsOnUpdate": False} for ce in ces)


def test_spot_first_then_on_demand_then_multi_node(queue):
    _, template = queue
    ces = list(resources_of(template, "AWS::Batch::ComputeEnvironment").values())
    kinds = sorted((ce["Properties"]["ComputeEnvironmentName"], ce["Properties"]["ComputeResources"]["Type"]) for ce in ces)
    assert kinds == [
        ("ChronosTraining-dev-Batch-MultiNode", "EC2"),
        ("ChronosTraining-dev-Batch-OnDemand", "EC2"),
        ("ChronosTraining-dev-Batch-Spot", "SPOT"),
    ]
    assert all(ce["Properties"]["ComputeResources"]["MinvCpus"] == 0 for ce in ces)


def test_invalid_props_raise(queue):
    stack = cdk.Stack(cdk.App(), "Bad")
    foundation = ChronosTrainingFoundation(stack, "Foundation", environment_name="dev")
    with pytest.raises(Exception, match="maxvCpus is 0"):
        TrainingBatchQueue(
            stack, "Batch", environment_name="dev", cost_center="train", vpc=foundation.vpc,
            subnets=foundation.public_subnets, security_group=foundation.security_group, bucket=foundation.bucket,
            image=ecs.ContainerImage.from_registry("python:3.12"), maxv_cpus=0,
        )


def test_foundation_with_batch_keyword():
    """The foundation's opt-in `batch` prop, with keyword arguments, as an ML team writes it."""
    from chronos_training_infra import FoundationExports, TrainingBatchQueueOptions

    stack = cdk.Stack(cdk.App(), "Team", env=cdk.Environment(account="123456789012", region="us-east-1"))
    foundation = ChronosTrainingFoundation(
        stack, "Foundation",
        environment_name="dev",
        batch=TrainingBatchQueueOptions(
            image=ecs.ContainerImage.from_registry("public.ecr.aws/docker/library/python:3.12"),
            spot=True,
        ),
    )
    foundation.grant_submit_batch_job(iam.Role(stack, "Submitter", assumed_by=iam.AccountRootPrincipal()))
    assert foundation.batch_queue.job_queue_name == "ChronosTraining-dev-Batch"
    assert foundation.export_names[-2:] == [
        FoundationExports.export_name("dev", FoundationExports.BATCH_JOB_QUEUE_ARN),
        FoundationExports.export_name("dev", FoundationExports.BATCH_JOB_DEFINITION_ARN),
    ]
    template = Template.from_stack(stack).to_json()
    assert len(resources_of(template, "AWS::Batch::JobQueue")) == 1
