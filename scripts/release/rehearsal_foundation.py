"""The rehearsal's foundation on a moto server (scripts/release/rehearsal.sh, step 5), made with the boto3 of the moto
venv, and the check that a run launched an instance.

  python rehearsal_foundation.py deploy ENDPOINT ENV     what a deployed foundation publishes to the launcher
                                                        (docs/RUNS.md): a VPC with two public subnets, the bucket, the
                                                        launch template with the foundation's instance tags, and the
                                                        SSM parameters /chronos-training/ENV/*, LaunchTemplateVersion
                                                        (the template's latest version) among them
  python rehearsal_foundation.py launched ENDPOINT ENV RUN   the one instance that run RUN launched (its ChronosRunId
                                                        tag), from ENV's launch template at the version the foundation
                                                        publishes: prints it; exits 1 otherwise

The template has two versions: the first (the default) with an image, the second (the latest, which the foundation
publishes) without one, as the library makes it by default: the launcher must launch the second, with its default
image (a resolve:ssm: parameter), and the instance's aws:ec2launchtemplate:version tag shows which it launched."""
import base64
import sys

import boto3

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


def client(service, endpoint):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def deploy(endpoint, env):
    ec2, s3, ssm = client("ec2", endpoint), client("s3", endpoint), client("ssm", endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    zones = ["%s%s" % (REGION, z) for z in "ab"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.%d.0/24" % n, AvailabilityZone=zone)["Subnet"]["SubnetId"]
               for n, zone in enumerate(zones)]
    bucket = "chronos-training-%s-%s-%s" % (env, ACCOUNT, REGION)
    s3.create_bucket(Bucket=bucket)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    # The foundation's lifetime (4 h) plus the 0.25 h margin, as the library stamps the tag.
    tags = [{"Key": k, "Value": v} for k, v in (("Project", "Chronos-Training"), ("Environment", env),
                                                 ("CostCenter", "rehearsal"), ("MaxLifetimeHours", "4.25"))]
    data = {"UserData": base64.b64encode(b"#!/bin/bash\ntrue\n").decode(),
            "TagSpecifications": [{"ResourceType": r, "Tags": tags} for r in ("instance", "volume")]}
    name = "ChronosTrainingLaunchTemplate-%s" % env
    template = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=dict(data, ImageId=image))
    template = template["LaunchTemplate"]
    latest = ec2.create_launch_template_version(LaunchTemplateId=template["LaunchTemplateId"], LaunchTemplateData=data)
    version = str(latest["LaunchTemplateVersion"]["VersionNumber"])
    parameters = {"S3BucketName": bucket, "LaunchTemplateId": template["LaunchTemplateId"],
                  "LaunchTemplateVersion": version, "PublicSubnetIds": ",".join(subnets),
                  "AvailabilityZones": ",".join(zones), "CostCenter": "rehearsal", "Environment": env}
    for suffix, value in parameters.items():
        ssm.put_parameter(Name="/chronos-training/%s/%s" % (env, suffix), Value=value, Type="String")
    print("release:local: foundation %s on %s: template %s version %s, subnets %s, bucket %s"
          % (env, endpoint, template["LaunchTemplateId"], version, ",".join(subnets), bucket))


def launched(endpoint, env, run_id):
    ec2, ssm = client("ec2", endpoint), client("ssm", endpoint)
    found = [i for r in ec2.describe_instances(Filters=[{"Name": "tag:ChronosRunId", "Values": [run_id]}])["Reservations"]
             for i in r["Instances"]]
    if len(found) != 1:
        sys.exit("release:local: FAILED: run %s launched %d instance(s) (tag ChronosRunId)" % (run_id, len(found)))
    instance = found[0]
    prefix = "/chronos-training/%s/" % env
    want = {k: ssm.get_parameter(Name=prefix + k)["Parameter"]["Value"] for k in ("LaunchTemplateId", "LaunchTemplateVersion")}
    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
    # EC2 tags an instance launched from a template with aws:ec2launchtemplate:id and :version.
    got = {"LaunchTemplateId": tags.get("aws:ec2launchtemplate:id"), "LaunchTemplateVersion": tags.get("aws:ec2launchtemplate:version")}
    if got != want:
        sys.exit("release:local: FAILED: %s was launched from %s, not the foundation's %s" % (instance["InstanceId"], got, want))
    print("release:local: run %s launched %s (%s, %s) from %s version %s" % (
        run_id, instance["InstanceId"], instance["InstanceType"], instance["State"]["Name"], got["LaunchTemplateId"],
        got["LaunchTemplateVersion"]))


def image(endpoint):
    """An AMI the emulator has: the launcher pins the default image (the DLAMI's public `resolve:ssm:` parameter) when
    a run starts, and moto refuses parameters under the reserved `/aws/`, so the rehearsal's run names an AMI ID, as
    the local run loop does (scripts/local/run-loop.js)."""
    print(sorted(i["ImageId"] for i in client("ec2", endpoint).describe_images(Owners=["amazon"])["Images"])[0])


if __name__ == "__main__":
    action, endpoint, *names = sys.argv[1:]
    if not endpoint.startswith(("http://localhost:", "http://127.0.0.1:")):
        sys.exit("rehearsal_foundation: only an emulator on loopback (%s)" % endpoint)
    {"deploy": deploy, "launched": launched, "image": image}[action](endpoint, *names)
