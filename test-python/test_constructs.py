"""Each of the four L3 constructs alone, in a plain Stack, with keyword props."""
import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from chronos_training_infra import (
    TrainingBucket,
    TrainingEgressSecurityGroup,
    TrainingInstanceRole,
    TrainingNetwork,
)
from support import only, resources_of


def new_stack(name):
    # One App per stack: an App cannot synthesize again after its tree changed.
    return cdk.Stack(cdk.App(), name)


@pytest.fixture(scope="module")
def network():
    stack = new_stack("NetworkStack")
    construct = TrainingNetwork(stack, "N", vpc_cidr="10.1.0.0/16", subnet_cidr_mask=20)
    return construct, Template.from_stack(stack)


@pytest.fixture(scope="module")
def bucket():
    stack = new_stack("BucketStack")
    construct = TrainingBucket(stack, "B", environment_name="prod", log_retention=cdk.Duration.days(7))
    return construct, Template.from_stack(stack)


@pytest.fixture(scope="module")
def role():
    stack = new_stack("RoleStack")
    construct = TrainingInstanceRole(stack, "R", bucket=s3.Bucket(stack, "Data"), environment_name="prod")
    return construct, Template.from_stack(stack)


@pytest.fixture(scope="module")
def security_group():
    stack = new_stack("SgStack")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=1, nat_gateways=0,
                  subnet_configuration=[ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC)])
    construct = TrainingEgressSecurityGroup(stack, "S", vpc=vpc, environment_name="dev")
    return construct, Template.from_stack(stack)


def test_network(network):
    construct, template = network
    template.resource_count_is("AWS::EC2::VPC", 1)
    template.resource_count_is("AWS::EC2::Subnet", 1)
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    template.resource_count_is("AWS::EC2::InternetGateway", 1)
    template.resource_count_is("AWS::EC2::VPCEndpoint", 1)
    template.has_resource_properties("AWS::EC2::VPC", {
        "CidrBlock": "10.1.0.0/16", "EnableDnsHostnames": True, "EnableDnsSupport": True})
    template.has_resource_properties("AWS::EC2::Subnet", {"CidrBlock": "10.1.0.0/20", "MapPublicIpOnLaunch": True})
    template.has_resource_properties("AWS::EC2::Route", {
        "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": Match.any_value()})
    endpoint = only(template.to_json(), "AWS::EC2::VPCEndpoint")["Properties"]
    assert endpoint["VpcEndpointType"] == "Gateway"
    assert "s3" in str(endpoint["ServiceName"])
    assert len(endpoint["RouteTableIds"]) == 1
    assert len(construct.vpc.public_subnets) == 1
    assert [s.node.path for s in construct.public_subnets] == [s.node.path for s in construct.vpc.public_subnets]


def test_network_rejects_a_bad_cidr():
    stack = new_stack("BadNetwork")
    with pytest.raises(RuntimeError, match=r"vpcCidr '10.0.0.0/8'"):
        TrainingNetwork(stack, "N", vpc_cidr="10.0.0.0/8")


def test_bucket(bucket):
    construct, template = bucket
    assert construct.environment_name == "prod"
    t = template.to_json()
    resource = only(t, "AWS::S3::Bucket")
    props = resource["Properties"]
    assert resource["DeletionPolicy"] == "Retain"
    assert props["BucketName"]["Fn::Join"][1][0] == "chronos-training-prod-"
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert "VersioningConfiguration" not in props
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["TrainingLogs"]["Prefix"] == "prod/logs/"
    assert rules["TrainingLogs"]["ExpirationInDays"] == 7
    assert rules["ModelArtifacts"]["Prefix"] == "prod/"
    assert rules["ModelArtifacts"]["ExpirationInDays"] == 90
    assert rules["ModelArtifacts"]["Transitions"] == [{"StorageClass": "STANDARD_IA", "TransitionInDays": 30}]
    # TLS only: the bucket policy denies requests without aws:SecureTransport.
    template.has_resource_properties("AWS::S3::BucketPolicy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])}})


def test_bucket_rejects_a_short_transition():
    stack = new_stack("BadBucket")
    with pytest.raises(RuntimeError, match=r"artifactTransition is 10 days"):
        TrainingBucket(stack, "B", environment_name="dev", artifact_transition=cdk.Duration.days(10))


def test_instance_role(role):
    construct, template = role
    t = template.to_json()
    iam_role = only(t, "AWS::IAM::Role")["Properties"]
    assert iam_role["AssumeRolePolicyDocument"]["Statement"] == [{
        "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}}]
    # The guide's three, and the run secrets' (issue 30: read and decrypt /chronos-training/{env}/secrets/* only).
    assert sorted(p["PolicyName"] for p in iam_role["Policies"]) == ["EC2SelfManagement", "ReadRunSecrets",
                                                                     "S3ReadAccess", "S3WriteAccess"]
    assert "ManagedPolicyArns" not in iam_role
    template.resource_count_is("AWS::IAM::Policy", 0)
    profile = only(t, "AWS::IAM::InstanceProfile")["Properties"]
    assert profile["InstanceProfileName"] == "ChronosTrainingInstanceProfile-prod"
    assert profile["Roles"] == [{"Ref": next(iter(resources_of(t, "AWS::IAM::Role")))}]
    write = next(p for p in iam_role["Policies"] if p["PolicyName"] == "S3WriteAccess")
    assert "prod/*" in str(write["PolicyDocument"])
    assert construct.role.role_name and construct.instance_profile.instance_profile_name


def test_instance_role_requires_a_bucket():
    stack = new_stack("NoBucket")
    with pytest.raises(TypeError, match="bucket"):
        TrainingInstanceRole(stack, "R", environment_name="prod")


def test_l3_constructs_require_the_environment_name():
    stack = new_stack("NoEnvironment")
    with pytest.raises(TypeError, match="environment_name"):
        TrainingBucket(stack, "B")


def test_instance_role_rejects_a_bucket_of_another_environment():
    stack = new_stack("Mismatch")
    prod = TrainingBucket(stack, "Prod", environment_name="prod")
    with pytest.raises(RuntimeError, match=r"environmentName 'dev' does not match the bucket's environment 'prod'"):
        TrainingInstanceRole(stack, "R", bucket=prod.bucket, environment_name="dev")


def test_egress_security_group(security_group):
    construct, template = security_group
    template.resource_count_is("AWS::EC2::SecurityGroup", 1)
    sg = only(template.to_json(), "AWS::EC2::SecurityGroup")["Properties"]
    assert sg["SecurityGroupEgress"] == [{
        "CidrIp": "0.0.0.0/0", "Description": "HTTPS to AWS services and package repos",
        "FromPort": 443, "IpProtocol": "tcp", "ToPort": 443}]
    assert "SecurityGroupIngress" not in sg
    assert "(dev)" in sg["GroupDescription"]
    template.resource_count_is("AWS::EC2::SecurityGroupIngress", 0)
    assert cdk.Token.is_unresolved(construct.security_group.security_group_id)
