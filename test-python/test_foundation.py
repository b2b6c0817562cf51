"""ChronosTrainingFoundation inside a user's own Stack, with keyword arguments:
typed members a Python user can reach and call, and errors that name the bad value."""
import typing

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from chronos_training_infra import (
    ChronosTrainingFoundation,
    ChronosTrainingStack,
    FoundationExports,
    TrainingBucket,
    TrainingBucketOptions,
    TrainingNetwork,
    TrainingNetworkProps,
)
from support import export_names, implements, only, resources_of, template_exports


@pytest.fixture(scope="module")
def built():
    app = cdk.App()
    stack = cdk.Stack(app, "MyTrainingStack")
    foundation = ChronosTrainingFoundation(
        stack, "Foundation",
        environment_name="stage",
        cost_center="train",
        network_props=TrainingNetworkProps(vpc_cidr="10.42.0.0/16"),
        bucket_props=TrainingBucketOptions(artifact_expiration=cdk.Duration.days(120)),
    )
    # The user's own resources, wired to the foundation's members.
    reader = iam.Role(stack, "Reader", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    foundation.bucket.grant_read(reader)
    foundation.grant_read_write_environment(reader)
    foundation.security_group.add_egress_rule(
        ec2.Peer.ipv4("10.42.0.0/16"), ec2.Port.tcp(5432), "user-added rule")
    return stack, foundation, reader, Template.from_stack(stack)


MEMBERS = [
    # (path from the foundation, declared type, implementing class, token attribute)
    # Optional: undefined when the foundation is given a VPC or bucket.
    ("network", typing.Optional[TrainingNetwork], None, None),
    ("training_bucket", typing.Optional[TrainingBucket], None, None),
    ("vpc", ec2.IVpc, ec2.Vpc, "vpc_id"),
    ("network.s3_endpoint", ec2.IGatewayVpcEndpoint, ec2.GatewayVpcEndpoint, "vpc_endpoint_id"),
    ("bucket", s3.IBucket, s3.Bucket, "bucket_name"),
    ("role", iam.IRole, iam.Role, "role_arn"),
    ("instance_profile", iam.IInstanceProfile, iam.InstanceProfile, "instance_profile_name"),
    ("security_group", ec2.ISecurityGroup, ec2.SecurityGroup, "security_group_id"),
    ("connections", ec2.Connections, ec2.Connections, None),
    ("launch_template", typing.Optional[ec2.ILaunchTemplate], ec2.LaunchTemplate, "launch_template_id"),
]


def _member(foundation, path):
    owner, value = None, foundation
    for name in path.split("."):
        owner, value = value, getattr(value, name)
    return owner, path.split(".")[-1], value


@pytest.mark.parametrize("path,declared,concrete,token_attr", MEMBERS, ids=[m[0] for m in MEMBERS])
def test_typed_member(built, path, declared, concrete, token_attr):
    _, foundation, _, _ = built
    owner, name, value = _member(foundation, path)
    # The property's annotation is the jsii type the TypeScript API declares.
    hints = typing.get_type_hints(getattr(type(owner), name).fget)
    assert hints["return"] == declared, f"{type(owner).__name__}.{name} is annotated {hints['return']}"
    if concrete is None:
        assert isinstance(value, declared)
    else:
        # jsii interfaces are non-runtime-checkable Protocols: check the jsii declaration instead.
        interface = typing.get_args(declared)[0] if typing.get_origin(declared) is typing.Union else declared
        assert declared is concrete or implements(value, interface), \
            f"{path} is a {type(value)}, which does not implement {declared}"
        assert isinstance(value, concrete)
        if token_attr is None:
            return
        token = getattr(value, token_attr)
        assert isinstance(token, str) and cdk.Token.is_unresolved(token), f"{path}.{token_attr} = {token!r}"


def test_tokens_resolve_to_the_foundation_resources(built):
    stack, foundation, _, template = built
    t = template.to_json()
    vpc_id = next(iter(resources_of(t, "AWS::EC2::VPC")))
    assert stack.resolve(foundation.vpc.vpc_id) == {"Ref": vpc_id}
    bucket_id = next(iter(resources_of(t, "AWS::S3::Bucket")))
    assert stack.resolve(foundation.bucket.bucket_name) == {"Ref": bucket_id}
    assert stack.resolve(foundation.public_subnets[0].subnet_id) == {
        "Ref": next(iter(resources_of(t, "AWS::EC2::Subnet")))}


def test_plain_members(built):
    _, foundation, _, _ = built
    assert foundation.environment_name == "stage"
    assert foundation.cost_center == "train"
    assert foundation.training_bucket.environment_name == "stage"
    assert isinstance(foundation.environment_name, str)
    assert foundation.export_names == FoundationExports.export_names("stage")


def test_exports_and_props_in_own_stack(built):
    _, _, _, template = built
    t = template.to_json()
    assert template_exports(t) == export_names("stage")
    assert only(t, "AWS::EC2::VPC")["Properties"]["CidrBlock"] == "10.42.0.0/16"
    rules = {r["Id"]: r for r in only(t, "AWS::S3::Bucket")["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["ModelArtifacts"]["ExpirationInDays"] == 120


def test_grants_on_the_bucket(built):
    _, _, reader, template = built
    template.has_resource_properties("AWS::IAM::Policy", {
        "Roles": [{"Ref": Match.string_like_regexp("^Reader")}],
        "PolicyDocument": {"Statement": Match.array_with([
            Match.object_like({"Action": Match.array_with(["s3:GetObject*"]), "Effect": "Allow"}),
            Match.object_like({"Action": "s3:ListBucket", "Condition": {"StringLike": {"s3:prefix": ["stage/*"]}}}),
        ])},
    })


def test_add_egress_rule_on_the_security_group(built):
    _, _, _, template = built
    sg = only(template.to_json(), "AWS::EC2::SecurityGroup")
    ports = sorted((r["IpProtocol"], r["FromPort"], r["CidrIp"]) for r in sg["Properties"]["SecurityGroupEgress"])
    assert ports == [("tcp", 443, "0.0.0.0/0"), ("tcp", 5432, "10.42.0.0/16")]
    assert "SecurityGroupIngress" not in sg["Properties"]


def test_struct_props_as_dicts():
    # jsii accepts a dict with the snake_case keys wherever a struct is expected.
    stack = cdk.Stack(cdk.App(), "Dicts")
    ChronosTrainingFoundation(stack, "Foundation", environment_name="dev",
                              network_props={"vpc_cidr": "10.9.0.0/16", "subnet_cidr_mask": 26})
    subnet = only(Template.from_stack(stack).to_json(), "AWS::EC2::Subnet")
    assert subnet["Properties"]["CidrBlock"] == "10.9.0.0/26"


def test_bad_environment_is_a_clear_python_exception():
    stack = cdk.Stack(cdk.App(), "Bad")
    with pytest.raises(RuntimeError, match=r"environmentName 'Prod' is invalid") as raised:
        ChronosTrainingFoundation(stack, "Foundation", environment_name="Prod")
    # The message says the rule too, not only the value.
    assert "lowercase" in str(raised.value)


def test_bad_environment_from_context():
    app = cdk.App(context={"@chronos/training-infra:environment": "my_env"})
    with pytest.raises(RuntimeError, match=r"environmentName \(context '@chronos/training-infra:environment'\) 'my_env' is invalid"):
        ChronosTrainingStack(app, "Bad")


def test_bad_environment_from_the_deprecated_bare_context_key():
    # The bare 0.1 key is still read (with a deprecation warning), and the error names it.
    app = cdk.App(context={"environment": "my_env"})
    with pytest.raises(RuntimeError, match=r"environmentName \(context 'environment'\) 'my_env' is invalid"):
        ChronosTrainingStack(app, "Bad")


def test_stack_name_for_checks_the_environment():
    with pytest.raises(RuntimeError, match=r"environmentName 'Prod' is invalid"):
        ChronosTrainingStack.stack_name_for("Prod")


def test_wrong_python_types_fail_before_synthesis():
    stack = cdk.Stack(cdk.App(), "Types")
    with pytest.raises(TypeError, match="environment_name"):
        ChronosTrainingFoundation(stack, "A", environment_name=42)
    with pytest.raises(TypeError, match="enviroment"):
        ChronosTrainingFoundation(stack, "B", enviroment="dev")  # misspelt keyword
