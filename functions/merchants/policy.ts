import type { APIGatewayAuthorizerResult } from 'aws-lambda';
import type { AuthenticatedKey } from './service';
import { usageKeyValue } from './keys';

/**
 * `arn:aws:execute-api:<region>:<account>:<apiId>/<stage>/<method>/<path>` →
 * `arn:aws:execute-api:<region>:<account>:<apiId>/<stage>/*\/*`. The authorizer's result is
 * cached per identity (the Authorization header) for the whole API, so the policy must allow
 * every route, not only the one that triggered it.
 */
export function wholeApiResource(methodArn: string): string {
  const parts = methodArn.split(':');
  const [apiId, stage] = (parts[5] ?? '').split('/');
  if (parts.length !== 6 || parts[0] !== 'arn' || parts[2] !== 'execute-api' || !apiId || !stage) {
    throw new Error(`Unexpected methodArn '${methodArn}': expected arn:aws:execute-api:<region>:<account>:<apiId>/<stage>/<method>/<path>`);
  }
  return `${parts.slice(0, 5).join(':')}:${apiId}/${stage}/*/*`;
}

export function allowWholeApi(methodArn: string, auth: AuthenticatedKey): APIGatewayAuthorizerResult {
  return {
    principalId: auth.merchantId,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: wholeApiResource(methodArn) }],
    },
    // Context values reach handlers as strings in event.requestContext.authorizer. The decision is cached per
    // Authorization header, so per key: `scopes` is this key's, and api() enforces it on each route.
    context: { merchantId: auth.merchantId, keyId: auth.keyId, livemode: String(auth.livemode), scopes: auth.scopes },
    // The merchant's usage-plan key: API Gateway throttles the merchant with its plan (usage.ts).
    usageIdentifierKey: usageKeyValue(auth.merchantId),
  };
}
