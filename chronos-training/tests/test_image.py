"""Which image a launch uses. The foundation's launch template has no AMI by default, and EC2 then refuses RunInstances
without an ImageId: the EC2 API Reference, RunInstances, says of ImageId "An AMI ID is required to launch an instance
and must be specified here or in a launch template". Moto picks an image silently, so these tests answer with fake
clients and look at the request.

The default image is given as `resolve:ssm:PARAMETER`, which EC2 resolves at launch: EC2 User Guide, "Use a Systems
Manager parameter instead of an AMI ID". The parameter is the DLAMI's public one,
`/aws/service/deeplearning/ami/$architecture/$ami_type/latest/ami-id` (AWS Deep Learning AMIs Developer Guide, "Finding
the ID of a DLAMI"): "Deep Learning AMI OSS Nvidia Driver GPU PyTorch 2.10 (Amazon Linux 2023)" →
oss-nvidia-driver-gpu-pytorch-2.10-amazon-linux-2023, which has PyTorch (release notes: python_location
/opt/pytorch/bin/python), so a first `run -- python train.py` imports torch. Its ARM64 sibling ("Deep Learning ARM64 AMI
OSS Nvidia Driver GPU PyTorch 2.10 (Amazon Linux 2023)") supports G5g and P6e-GB200."""
import re
from types import SimpleNamespace

import pytest

from chronos_training import ec2launch as launch
from chronos_training.errors import ChronosError
from chronos_training.foundation import resolve_foundation
from conftest import Fake, aws_error, raises

DLAMI_X86 = "resolve:ssm:/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.10-amazon-linux-2023/latest/ami-id"
DLAMI_ARM = "resolve:ssm:/aws/service/deeplearning/ami/arm64/oss-nvidia-driver-gpu-pytorch-2.10-amazon-linux-2023/latest/ami-id"
PARAMETERS = {"S3BucketName": "b", "LaunchTemplateId": "lt-0123456789abcdef0", "LaunchTemplateVersion": "2",
              "PublicSubnetIds": "subnet-a", "AvailabilityZones": "us-east-1a"}


@pytest.fixture
def aws():
    ec2, ssm = Fake(), Fake()
    ssm.on("get_parameters_by_path", lambda **_: {"Parameters": [
        {"Name": "/chronos-training/dev/%s" % k, "Value": v} for k, v in PARAMETERS.items()]})
    ec2.on("describe_instance_type_offerings", raises(aws_error("UnauthorizedOperation")))
    ec2.on("run_instances", lambda **_: {"Instances": [{"InstanceId": "i-0123456789abcdef0"}]})
    return SimpleNamespace(ec2=ec2, ec2_launch=ec2, ssm=ssm)


def template(aws, image_id=None):
    """The template's facts, at the version the foundation published (never `$Default`)."""
    def answer(**a):
        assert a == {"LaunchTemplateId": "lt-0123456789abcdef0", "Versions": ["2"]}
        return {"LaunchTemplateVersions": [{"LaunchTemplateData": {"ImageId": image_id} if image_id else {}}]}
    aws.ec2.on("describe_launch_template_versions", answer)


def image_ids(aws):
    return [a.get("ImageId") for a in aws.ec2.called("run_instances")]


def launch_with(aws, instance_types, flag=None, pin=False):
    """Reads the foundation, chooses the image as `run` does (and with `pin`, pins it), and launches."""
    foundation = resolve_foundation(aws, "dev")
    image = launch.choose_image(foundation, instance_types, flag)
    if pin:
        image = launch.pin_image(aws, foundation, image)
    launch.launch_with_fallback(aws, foundation, launch.LaunchRequest(
        run_id="r-20261201-120000-abcdef", attempt=1, instance_types=instance_types, markets=["spot"],
        max_lifetime_hours=4, image_id=image.image_id))
    return image


def test_a_template_without_an_image_the_x86_64_dlami_through_resolve_ssm(aws):
    template(aws)
    image = launch_with(aws, ["g5.xlarge"])
    assert image_ids(aws) == [DLAMI_X86]
    assert re.search(r"Deep Learning AMI OSS Nvidia Driver GPU PyTorch 2\.10 \(Amazon Linux 2023\), x86_64.*the launch template "
                     r"has no image", image.description)


def test_a_template_without_an_image_and_arm64_types_the_arm64_dlami(aws):
    template(aws)
    launch_with(aws, ["g5g.xlarge", "g5g.2xlarge"])
    assert image_ids(aws) == [DLAMI_ARM]


def test_a_template_without_an_image_and_both_architectures_refused_naming_them(aws):
    template(aws)
    with pytest.raises(ChronosError, match=r"g5g\.xlarge.*arm64.*g5\.xlarge.*x86_64.*--image-id"):
        launch_with(aws, ["g5.xlarge", "g5g.xlarge"])
    assert image_ids(aws) == []


def test_image_id_ami_that_ami_whether_the_template_has_an_image_or_not(aws):
    template(aws)
    launch_with(aws, ["g5.xlarge"], "ami-0abcdef1234567890")
    template(aws, "ami-0aaaaaaaaaaaaaaa1")
    image = launch_with(aws, ["g5.xlarge"], "ami-0abcdef1234567890")
    assert image_ids(aws) == ["ami-0abcdef1234567890", "ami-0abcdef1234567890"]
    assert image.description == "--image-id ami-0abcdef1234567890 (instead of the launch template's ami-0aaaaaaaaaaaaaaa1)"


def test_image_id_resolve_ssm_sent_as_given_for_ec2_to_resolve(aws):
    template(aws)
    name = "resolve:ssm:/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.7-amazon-linux-2023/latest/ami-id"
    launch_with(aws, ["g5.xlarge"], name)
    assert image_ids(aws) == [name]


def test_a_template_with_an_image_and_no_image_id_no_image_id_is_sent(aws):
    template(aws, "ami-0aaaaaaaaaaaaaaa1")
    image = launch_with(aws, ["g5.xlarge"])
    assert image_ids(aws) == [None]
    assert image.description == "the launch template's ami-0aaaaaaaaaaaaaaa1"


@pytest.mark.parametrize("value", ["ubuntu", "ami-123", "AMI-0abcdef1234567890", "resolve:ssm:", "ssm:/aws/service/x"])
def test_image_id_is_refused_exit_2(aws, value):
    template(aws)
    foundation = resolve_foundation(aws, "dev")
    with pytest.raises(ChronosError) as e:
        launch.choose_image(foundation, ["g5.xlarge"], value)
    assert e.value.exit_code == 2
    assert re.match(r"^--image-id '.*' is neither an AMI ID \(ami-…\) nor resolve:ssm:PARAMETER", e.value.message)


@pytest.mark.parametrize("instance_type,arm", [
    ("g5g.xlarge", True), ("c7g.large", True), ("t4g.micro", True), ("m6gd.large", True), ("im4gn.large", True),
    ("c7gn.large", True), ("p6e-gb200.36xlarge", True), ("a1.large", True), ("g5.xlarge", False), ("g4dn.xlarge", False),
    ("g6e.xlarge", False), ("p4de.24xlarge", False), ("p5en.48xlarge", False), ("trn1.2xlarge", False),
    ("inf2.xlarge", False), ("c7i.large", False), ("m7a.large", False), ("t3.micro", False)])
def test_is_arm64(instance_type, arm):
    assert launch.is_arm64_instance_type(instance_type) is arm


# The image is pinned per run (docs/RUNS.md): a `resolve:ssm:` image is resolved once, when the run starts, with ssm
# GetParameters (the action EC2 needs for resolve:ssm:, which the foundation's launch grant allows; Systems Manager API
# Reference, GetParameters: Parameters[].Value, and InvalidParameters for names that do not exist), and every attempt
# launches that AMI ID, so that a parameter that moves (a new DLAMI release, another driver or CUDA) between attempts
# changes nothing. EC2 would resolve `resolve:ssm:` at each launch instead (EC2 User Guide, "Use a Systems Manager
# parameter instead of an AMI ID": the parameter is resolved when the instance is launched).
def pinned_launch(aws, instance_types, flag=None):
    return launch_with(aws, instance_types, flag, pin=True)


def test_the_default_dlami_is_resolved_once_and_its_ami_id_launched(aws):
    template(aws)
    aws.ssm.on("get_parameters", lambda **a: {"Parameters": [{"Name": a["Names"][0], "Value": "ami-0123456789abcdef0"}]})
    image = pinned_launch(aws, ["g5.xlarge"])
    assert [a["Names"] for a in aws.ssm.called("get_parameters")] == [[DLAMI_X86[len("resolve:ssm:"):]]]
    assert image.image_id == "ami-0123456789abcdef0" and image_ids(aws) == ["ami-0123456789abcdef0"]
    assert "pinned for every attempt of the run: ami-0123456789abcdef0" in image.description


def test_a_templates_resolve_ssm_image_is_pinned_too_and_an_ami_id_is_not_looked_up(aws):
    template(aws, "resolve:ssm:/my/team/ami")
    aws.ssm.on("get_parameters", lambda **a: {"Parameters": [{"Name": a["Names"][0], "Value": "ami-0aaaaaaaaaaaaaaaa"}]})
    assert pinned_launch(aws, ["g5.xlarge"]).image_id == "ami-0aaaaaaaaaaaaaaaa"
    assert [a["Names"] for a in aws.ssm.called("get_parameters")] == [["/my/team/ami"]]
    pinned_launch(aws, ["g5.xlarge"], "ami-0bbbbbbbbbbbbbbbb")
    assert len(aws.ssm.called("get_parameters")) == 1 and image_ids(aws)[-1] == "ami-0bbbbbbbbbbbbbbbb"


def test_an_image_parameter_that_is_missing_or_not_an_ami_id_is_a_clear_error(aws):
    template(aws)
    aws.ssm.on("get_parameters", raises(aws_error("AccessDeniedException")))
    with pytest.raises(ChronosError) as e:
        pinned_launch(aws, ["g5.xlarge"])
    assert e.value.message.startswith("cannot resolve the image %s: ssm GetParameters: AccessDeniedException" % DLAMI_X86)
    aws.ssm.on("get_parameters", lambda **a: {"Parameters": [], "InvalidParameters": a["Names"]})
    with pytest.raises(ChronosError) as e:
        pinned_launch(aws, ["g5.xlarge"])
    assert e.value.message.startswith("cannot resolve the image %s: ssm GetParameters: no such parameter" % DLAMI_X86)
    aws.ssm.on("get_parameters", lambda **a: {"Parameters": [{"Name": a["Names"][0], "Value": "ubuntu"}]})
    with pytest.raises(ChronosError) as e:
        pinned_launch(aws, ["g5.xlarge"])
    assert e.value.message == "the image %s holds 'ubuntu', not an AMI ID" % DLAMI_X86
    assert aws.ec2.called("run_instances") == []
