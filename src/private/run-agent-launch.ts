import * as zlib from 'zlib';
import { Fn, IResolvable, Lazy, Stack, Token } from 'aws-cdk-lib';
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

/** The boundary of CDK's `MultipartUserData` archives: no line of a raw part may start with `--` and it. */
export const MIME_BOUNDARY = '+AWS+CDK+User+Data+Separator==';

/**
 * The agent's part: a raw (not base64-encoded) `text/x-shellscript` part, which leaves the user's part more room;
 * raw is safe because the script is ASCII and no line of it starts with `--` (the part boundary is
 * `--+AWS+CDK+User+Data+Separator==`; both are tested).
 */
export const AGENT_PART_CONTENT_TYPE = 'text/x-shellscript; charset="us-ascii"';

/** The tag key rule of instances whose tags are in the instance metadata, in the words of the error. */
export const IMDS_TAG_KEY_RULE = 'with tags in the instance metadata, EC2 refuses to launch an instance whose tag key holds ' +
  "anything but letters (a-z, A-Z), digits (0-9) and + - = . , _ : @ (no space, no '/'), or is '.', '..' or '_index'";

/**
 * The launch template's user data with the run agent, uncompressed: a MIME multipart archive, as cloud-init reads
 * it. Its first part is the agent's boot script, gzipped and base64-encoded; the second, when given,
 * is `userData`, base64-encoded as `MultipartBody.fromUserData` renders it (so any script, whatever its characters,
 * and tokens). cloud-init names the parts of an archive `part-001`, `part-002`, … in their order and runs the
 * scripts sorted by name, so the agent's part runs first and the user's after it (cloud-init's
 * `cloudinit/user_data.py`, `PART_FN_TPL = 'part-%03d'`, and `cloudinit/subp.py` `runparts`, which sorts; "MIME
 * multi-part archive", cloud-init's "User data formats"). The template uses it only when `userData` holds a token
 * (`runAgentUserDataValue`): otherwise the archive is gzip-compressed at synthesis.
 *
 * @param prop the name of the prop that gave `userData`, for the error
 */
export function runAgentMultipartUserData(agent: RunAgentUserDataOptions, userData: ec2.UserData | undefined,
  prop: string): ec2.MultipartUserData {
  checkUserData(userData, prop);
  const multipart = new ec2.MultipartUserData();
  multipart.addPart(ec2.MultipartBody.fromRawBody({ contentType: AGENT_PART_CONTENT_TYPE, body: runAgentUserData({ ...agent, embed: 'gzip-base64' }) }));
  if (userData) {
    multipart.addPart(ec2.MultipartBody.fromUserData(userData));
  }
  return multipart;
}

function checkUserData(userData: ec2.UserData | undefined, prop: string): void {
  if (userData instanceof ec2.MultipartUserData) {
    throw new Error(`${prop} is an ec2.MultipartUserData; with runAgent it becomes the second part of the template's ` +
      'multipart user data, which holds one script: pass ec2.UserData.forLinux() (or ec2.UserData.custom() starting ' +
      'with #!), or set runAgent: false');
  }
}

/**
 * The same archive as text, for gzip: the agent's boot script raw (the loader in a quoted heredoc), and the
 * user's script, rendered (`userText`, without tokens), raw too, or base64-encoded if a line of it starts with the
 * boundary.
 */
export function runAgentArchiveText(agent: RunAgentUserDataOptions, userText: string | undefined): string {
  const agentScript = runAgentUserData({ ...agent, embed: 'raw' });
  if (hasBoundaryLine(agentScript)) {
    throw new Error(`a line of the run agent starts with the MIME boundary --${MIME_BOUNDARY}`);
  }
  const multipart = new ec2.MultipartUserData();
  multipart.addPart(ec2.MultipartBody.fromRawBody({ contentType: AGENT_PART_CONTENT_TYPE, body: agentScript }));
  if (userText !== undefined) {
    multipart.addPart(hasBoundaryLine(userText)
      ? ec2.MultipartBody.fromRawBody({ contentType: ec2.MultipartBody.SHELL_SCRIPT, transferEncoding: 'base64', body: Buffer.from(userText).toString('base64') })
      : ec2.MultipartBody.fromRawBody({ contentType: ec2.MultipartBody.SHELL_SCRIPT, body: userText }));
  }
  const text = multipart.render();
  if (Token.isUnresolved(text)) throw new Error('the run agent\'s archive has a token'); // cannot be: both parts are literals
  return text;
}

function hasBoundaryLine(text: string): boolean {
  return text.split('\n').some(line => line.startsWith(`--${MIME_BOUNDARY}`));
}

/**
 * gzip, level 9, deterministic: Node writes no file name and a modification time of 0; the OS byte (set by zlib's
 * build) is pinned to 3, Unix, so that every machine synthesizes the same bytes.
 */
export function gzipDeterministic(text: string): Buffer {
  const gz = zlib.gzipSync(Buffer.from(text, 'utf-8'), { level: 9 });
  gz[9] = 3;
  return gz;
}

/**
 * The template's `LaunchTemplateData.UserData`, decided at synthesis (the user may add commands after the
 * template): when the user's part holds no token, the archive of `runAgentArchiveText` gzip-compressed and
 * base64-encoded, a literal. cloud-init uncompresses it ("Gzip Compressed Content: content found to be gzip
 * compressed will be uncompressed. The uncompressed data will then be used as if it were not compressed. This is
 * typically useful because user-data is limited to ~16384 bytes", cloud-init's "User data formats",
 * https://docs.cloud-init.io/en/latest/explanation/format.html, canonical/cloud-init doc/rtd/topics/format.rst), and
 * EC2's 16 KB count the bytes it is given, here the compressed ones.
 * With a token (`addS3DownloadCommand`'s bucket, say), the uncompressed `fallback`, as `Fn::Base64`.
 */
export function runAgentUserDataValue(agent: RunAgentUserDataOptions, userData: ec2.UserData | undefined,
  fallback: ec2.UserData): IResolvable {
  return Lazy.any({
    produce: () => {
      const user = userData?.render();
      if (user !== undefined && Token.isUnresolved(user)) return Fn.base64(fallback.render());
      return gzipDeterministic(runAgentArchiveText(agent, user)).toString('base64');
    },
  });
}

/** What `addRunAgentValidations` checks. */
export interface RunAgentValidationOptions {
  /** The agent's options. */
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
        errors.push(`${scope.node.path}: the user data is ${size.total} bytes${size.compressed ? ' gzip-compressed' : ''}, ` +
          `over the ${USER_DATA_LIMIT_BYTES} bytes (16 KB) EC2 accepts before base64 ("Work with instance user data", ` +
          'Amazon EC2 User Guide): ' + (size.compressed
          ? `the run agent's part takes ${size.agent} bytes of it, compressed with the MIME headers; your userData is ` +
            `${size.user} bytes, about ${size.userEncoded} compressed, and ${size.userBudget} bytes are left for it ` +
            '(compressed). Shorten userData (fetch a longer script from the bucket), or set runAgent: false'
          : `the run agent's part ${size.agent} bytes, your userData ${size.user} bytes (${size.userEncoded} base64-encoded ` +
            `in the archive), the MIME headers ${size.headers} bytes. Your userData holds a token (such as ` +
            'addS3DownloadCommand\'s bucket), so the user data is not gzip-compressed at synthesis: ' +
            `${size.userBudget} bytes are left for it. Shorten userData to at most ${size.userBudget} bytes, drop its ` +
            'tokens (then the whole is gzip-compressed), or set runAgent: false'));
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
  /** Whether the user data is gzip-compressed at synthesis (the user's part has no token). */
  readonly compressed: boolean;
  /** What EC2 counts: the gzip archive's bytes, or the archive's. */
  readonly total: number;
  /** The agent's part: compressed, the archive without the user's part, gzipped; else the boot script's bytes. */
  readonly agent: number;
  /** The user's script, rendered, raw. */
  readonly user: number;
  /** What the user's part adds: compressed, `total - agent`; else its base64 length. */
  readonly userEncoded: number;
  /** The MIME headers, uncompressed only (0 compressed: they are in `agent` and `userEncoded`). */
  readonly headers: number;
  /** The room for the user's part: compressed, `USER_DATA_LIMIT_BYTES - agent` (compressed bytes); else the largest raw script whose base64 fits. */
  readonly userBudget: number;
}

/**
 * The size of the user data as EC2 counts it (before base64), on the path `runAgentUserDataValue` takes. Compressed,
 * exact. Uncompressed, a string in the user's part counts its UTF-8 bytes and a token (a reference resolved at
 * deployment) as empty, so the figure is a lower bound.
 */
export function userDataSize(stack: Stack, agent: RunAgentUserDataOptions, userData?: ec2.UserData): UserDataSize {
  const rendered = userData?.render();
  if (rendered === undefined || !Token.isUnresolved(rendered)) {
    const total = gzipDeterministic(runAgentArchiveText(agent, rendered)).length;
    const agentBytes = gzipDeterministic(runAgentArchiveText(agent, undefined)).length;
    const user = rendered === undefined ? 0 : Buffer.byteLength(rendered);
    const userBudget = Math.max(0, USER_DATA_LIMIT_BYTES - agentBytes);
    return { compressed: true, total, agent: agentBytes, user, userEncoded: total - agentBytes, headers: 0, userBudget };
  }
  const agentBytes = Buffer.byteLength(runAgentUserData({ ...agent, embed: 'gzip-base64' }));
  const user = renderedBytes(stack.resolve(rendered));
  const userEncoded = base64Length(user);
  const archive = (part: ec2.UserData) => renderedBytes(stack.resolve(runAgentMultipartUserData(agent, part, 'userData').render()));
  const total = archive(userData!);
  const headers = total - agentBytes - userEncoded;
  // The largest user part whose base64 fits what is left beside the agent and the headers of both parts.
  const left = USER_DATA_LIMIT_BYTES - (total - userEncoded);
  return { compressed: false, total, agent: agentBytes, user, userEncoded, headers, userBudget: Math.max(0, Math.floor(left / 4) * 3) };
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
