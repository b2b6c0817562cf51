import * as iam from 'aws-cdk-lib/aws-iam';

/*
 * Grants on resources without resource policies (AWS Batch job queues and job definitions, EC2 launch
 * templates, SSM parameters) can only be added to the grantee's own policy. When the grantee has none this
 * app can change, the grant must fail loudly instead of returning a grant that did nothing.
 */

/**
 * aws-cdk-lib's id of the role `iam.Role.fromRoleArn(..., { mutable: false })` returns. Such a role answers
 * every `addToPrincipalPolicy` with `statementAdded: true` and adds nothing: "If this is false or not
 * specified, grant permissions added to this role are ignored" (aws-cdk-lib API reference,
 * `FromRoleArnOptions.addGrantsToResources`). `Grant.assertSuccess` cannot see that, so it is recognised here.
 */
const IMMUTABLE_ROLE = 'aws-cdk-lib.aws-iam.ImmutableRole';

function isImmutableRole(principal: iam.IPrincipal): boolean {
  return (principal.constructor as { PROPERTY_INJECTION_ID?: string }).PROPERTY_INJECTION_ID === IMMUTABLE_ROLE;
}

/**
 * `grant` as it is, if every statement reached the grantee's own policy; else an error naming the method,
 * the grantee and what to do (as `Grant.assertSuccess` does for a resource that has no policy).
 *
 * @param method the grant method, for the message, e.g. `grantLaunch`
 * @param grantee the principal given to it
 * @param grant the combined grant of `Grant.addToPrincipal` calls
 * @param resources what the grant is on, for the message, e.g. `AWS Batch job queues`
 * @throws when the grantee has no policy this app can add to
 */
export function assertPrincipalGranted(method: string, grantee: iam.IGrantable, grant: iam.Grant, resources: string): iam.Grant {
  const principal = grantee.grantPrincipal;
  const immutable = isImmutableRole(principal);
  if (grant.success && !immutable) {
    return grant;
  }
  const why = immutable
    ? 'is a role imported with mutable: false, whose grants aws-cdk-lib ignores'
    : 'has no identity policy this app can add to (an account, service or ARN principal, or an immutable imported role)';
  throw new Error(`${method}: the grantee ${principal} ${why}, and ${resources} have no resource policy to hold the grant ` +
    'instead, so the grant would do nothing. Pass a role or user this app may change (iam.Role.fromRoleArn with mutable: true, ' +
    'the default), or attach the same statements to the principal where it is defined');
}
