import { Lazy, Size, SizeRoundingBehavior, TagManager } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';

/*
 * What every launch template of the library gives the instances it launches: an
 * encrypted gp3 root volume deleted with the instance, and tags of their own.
 */

/** The largest gp3 volume a launch template takes: "gp2 and gp3: 1 - 16,384 GiB" (LaunchTemplateEbsBlockDeviceRequest, VolumeSize). */
export const MAX_GP3_GIB = 16384;

/**
 * A root volume `Size` as the whole GiB EC2 takes: a literal size that is a whole number of GiB (a `Size` in MiB or
 * KiB that is not whole in GiB is rejected, not rounded), from `minGiB` to 16384.
 * @throws naming `prop`, its value, the unit and the range
 */
export function rootVolumeGiB(prop: string, size: Size, minGiB: number): number {
  const gib = size.isUnresolved() ? NaN : size.toGibibytes({ rounding: SizeRoundingBehavior.NONE });
  if (!Number.isInteger(gib) || gib < minGiB || gib > MAX_GP3_GIB) {
    throw new Error(`${prop} is ${Number.isNaN(gib) ? 'a token' : `${gib} GiB`}; it must be a literal whole number of GiB ` +
      `(for example Size.gibibytes(100)) from ${minGiB} to ${MAX_GP3_GIB}`);
  }
  return gib;
}

/** An encrypted gp3 root volume on `deviceName`, deleted on termination. */
export function encryptedRootVolume(deviceName: string, sizeGiB: number): ec2.BlockDevice {
  return {
    deviceName,
    volume: ec2.BlockDeviceVolume.ebs(sizeGiB, {
      volumeType: ec2.EbsDeviceVolumeType.GP3,
      encrypted: true,
      deleteOnTermination: true,
    }),
  };
}

/**
 * Tags what `template` launches (`resourceTypes`) with the tags the template
 * itself carries (from `Tags.of(...)`) merged with `ownTags`, which win (so an
 * enclosing `ManagedBy=CDK` does not claim the instances). The L2 renders one set
 * of tags for the template, its instances and their volumes, hence the escape hatch.
 *
 * @returns the merged tags, read at synthesis (when every `Tags.of(...)` has been applied)
 */
export function tagLaunchedResources(template: ec2.LaunchTemplate, ownTags: Record<string, string>,
  resourceTypes: string[]): () => Record<string, string> {
  const merged = (): Record<string, string> => {
    const inherited = (TagManager.of(template)?.renderTags() ?? []) as Array<{ Key: string; Value: string }>;
    return { ...Object.fromEntries(inherited.map(t => [t.Key, t.Value])), ...ownTags };
  };
  const cfn = template.node.defaultChild as ec2.CfnLaunchTemplate;
  cfn.addPropertyOverride('LaunchTemplateData.TagSpecifications', Lazy.any({
    produce: () => {
      const tags = merged();
      const sorted = Object.keys(tags).sort().map(Key => ({ Key, Value: tags[Key] }));
      return resourceTypes.map(ResourceType => ({ ResourceType, Tags: sorted }));
    },
  }));
  return merged;
}
