import { Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { runAgentUserData, RunAgentUserDataOptions } from './run-agent-user-data';

/*
 * How a launch template starts the run agent (docs/RUNS.md, "On the instance"): its user data is a MIME multipart
 * archive whose first part is the agent's boot script and whose second part is the user's own user data, and two
 * synthesis checks for what EC2 would otherwise refuse at every launch (tag keys in the instance metadata, the size).
 */

/**
 * EC2 takes at most 16 KB of user data "in raw form, before it is base64-encoded" ("Work with instance user data",
 * Amazon EC2 User Guide, https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html).
 */
export const USER_DATA_LIMIT_BYTES = 16 * 1024;

/** A bucket name is at most 63 characters (Amazon S3 User Guide, "General purpose bucket naming rules"). */
export const MAX_BUCKET_NAME_LENGTH = 63;

/**
 * The agent's part: a raw (not base64-encoded) `text/x-shellscript` part. Base64 would make the agent's 14 KB about
 * 18.7 KB, over the limit; raw is safe because the script is ASCII and no line of it starts with `--` (the part
 * boundary is `--+AWS+CDK+User+Data+Separator==`; both are tested).
 */
export const AGENT_PART_CONTENT_TYPE = 'text/x-shellscript; charset="us-ascii"';

/** The tag key rule of instances whose tags are in the instance metadata, in the words of the error. */
export const IMDS_TAG_KEY_RULE = 'with tags in the instance metadata, EC2 refuses to launch an instance whose tag key holds ' +
  "anything but letters (a-z, A-Z), digits (0-9) and + - = . , _ : @ (no space, no '/'), or is '.', '..' or '_index'";

/**
 * The launch template's user data with the run agent: a MIME multipart archive, as cloud-init reads it. Its first
 * part is the agent's boot script; the second, when given, is `userData`, base64-encoded as
 * `MultipartBody.fromUserData` renders it (so any script, whatever its characters). cloud-init names the parts of an
 * archive `part-001`, `part-002`, … in their order and runs the scripts sorted by name, so the agent's part runs
 * first and the user's after it (cloud-init's `cloudinit/user_data.py`, `PART_FN_TPL = 'part-%03d'`, and
 * `cloudinit/subp.py` `runparts`, which sorts; "MIME multi-part archive", cloud-init's "User data formats").
 *
 * @param prop the name of the prop that gave `userData`, for the error
 */
export function runAgentMultipartUserData(agent: RunAgentUserDataOptions, userData: ec2.UserData | undefined,
  prop: string): ec2.MultipartUserData {
  if (userData instanceof ec2.MultipartUserData) {
    throw new Error(`${prop} is an ec2.MultipartUserData; with runAgent it becomes the second part of the template's ` +
      'multipart user data, which holds one script: pass ec2.UserData.forLinux() (or ec2.UserData.custom() starting ' +
      'with #!), or set runAgent: false');
  }
  const multipart = new ec2.MultipartUserData();
  multipart.addPart(ec2.MultipartBody.fromRawBody({ contentType: AGENT_PART_CONTENT_TYPE, body: runAgentUserData(agent) }));
  if (userData) {
    multipart.addPart(ec2.MultipartBody.fromUserData(userData));
  }
  return multipart;
}

/** What `addRunAgentValidations` checks. */
export interface RunAgentValidationOptions {
  /** The agent's options, the bucket name possibly a token. */
  readonly agent: RunAgentUserDataOptions;
  /** The user's own part. */
  readonly userData?: ec2.UserData;
  /** The instance tags, merged, as the template renders them at synthesis. */
  readonly instanceTags: () => Record<string, string>;
}

/**
 * Two synthesis checks (at synthesis because the user's `Tags.of(...)` and user data commands may be added after
 * the template): the instance tag keys follow the instance metadata rule (`IMDS_TAG_KEY_RULE`), and the user data
 * fits in `USER_DATA_LIMIT_BYTES`.
 */
export function addRunAgentValidations(scope: Construct, options: RunAgentValidationOptions): void {
  scope.node.addValidation({
    validate: () => {
      const errors: string[] = [];
      const bad = imdsTagKeyViolations(Object.keys(options.instanceTags()));
      if (bad.length > 0) {
        errors.push(`${scope.node.path}: the instance tag key${bad.length > 1 ? 's' : ''} ${bad.map(k => `'${k}'`).join(', ')} ` +
          `cannot be launched with runAgent: ${IMDS_TAG_KEY_RULE} ("View tags for your EC2 instances using instance ` +
          'metadata", Amazon EC2 User Guide). Rename the tag, keep it off the launch template (Tags.of(scope).add(key, ' +
          "value, { excludeResourceTypes: ['AWS::EC2::LaunchTemplate'] })), or set runAgent: false");
      }
      const size = userDataSize(Stack.of(scope), options.agent, options.userData);
      if (size.total > USER_DATA_LIMIT_BYTES) {
        errors.push(`${scope.node.path}: the user data is ${size.total} bytes, over the ${USER_DATA_LIMIT_BYTES} bytes (16 KB) ` +
          'EC2 accepts before base64 ("Work with instance user data", Amazon EC2 User Guide): the run agent\'s part ' +
          `${size.agent} bytes (the bucket name counted at its longest, ${MAX_BUCKET_NAME_LENGTH} characters), your userData ` +
          `${size.user} bytes (${size.userEncoded} base64-encoded in the archive), the MIME headers ${size.headers} bytes. ` +
          `Shorten userData to at most ${size.userBudget} bytes (fetch a longer script from the bucket), or set runAgent: false`);
      }
      return errors;
    },
  });
}

/** The tag keys EC2 refuses on an instance whose tags are in the instance metadata (tokens are not checked). */
export function imdsTagKeyViolations(keys: string[]): string[] {
  return keys.filter(key => !Token.isUnresolved(key) &&
    (!/^[a-zA-Z0-9+\-=.,_:@]+$/.test(key) || key === '.' || key === '..' || key === '_index'));
}

/** The sizes, in bytes, of the template's user data and its parts. */
export interface UserDataSize {
  readonly total: number;
  readonly agent: number;
  readonly user: number;
  readonly userEncoded: number;
  readonly headers: number;
  /** The largest user part that would fit. */
  readonly userBudget: number;
}

/**
 * The size of the rendered user data, before base64. A bucket name that is a token counts at its longest; in the
 * user's part, a string counts its UTF-8 bytes, and a token other than the bucket name (a reference resolved at
 * deployment) counts as empty, so the figure is a lower bound only with such tokens.
 */
export function userDataSize(stack: Stack, agent: RunAgentUserDataOptions, userData?: ec2.UserData): UserDataSize {
  const bucketName = Token.isUnresolved(agent.bucketName) ? 'b'.repeat(MAX_BUCKET_NAME_LENGTH) : agent.bucketName;
  const sized = { ...agent, bucketName };
  const agentBytes = Buffer.byteLength(runAgentUserData(sized));
  const user = userData ? renderedBytes(stack.resolve(userData.render())) : 0;
  const userEncoded = userData ? base64Length(user) : 0;
  const rendered = (part?: ec2.UserData) => renderedBytes(stack.resolve(runAgentMultipartUserData(sized, part, 'userData').render()));
  const total = rendered(userData);
  const headers = total - agentBytes - userEncoded;
  // The largest user part whose base64 fits what is left beside the agent and the headers of both parts.
  const left = USER_DATA_LIMIT_BYTES - (userData ? total - userEncoded : rendered(ec2.UserData.custom('')));
  return { total, agent: agentBytes, user, userEncoded, headers, userBudget: Math.max(0, Math.floor(left / 4) * 3) };
}

function base64Length(bytes: number): number {
  return Math.ceil(bytes / 3) * 4;
}

/** The UTF-8 length of a resolved CloudFormation value: strings, `Fn::Join` and `Fn::Base64`; other intrinsics as empty. */
export function renderedBytes(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (typeof value === 'number') return String(value).length;
  if (value && typeof value === 'object') {
    const v = value as Record<string, any>;
    if (Array.isArray(v['Fn::Join'])) {
      const [separator, parts] = v['Fn::Join'] as [string, unknown[]];
      const list = Array.isArray(parts) ? parts : [];
      return list.reduce<number>((sum, p) => sum + renderedBytes(p), 0) + Buffer.byteLength(separator) * Math.max(0, list.length - 1);
    }
    if ('Fn::Base64' in v) return base64Length(renderedBytes(v['Fn::Base64']));
  }
  return 0;
}
