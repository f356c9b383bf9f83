import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { AuthenticationError } from '../commons/errors';
import { lambda } from '../commons/lambda';
import { logger } from '../commons/logger';
import { merchantDepsFromEnv } from '../merchants/deps';
import { parseBearer } from '../merchants/keys';
import { allowWholeApi } from '../merchants/policy';
import { authenticate } from '../merchants/service';

/**
 * REQUEST authorizer: `Authorization: Bearer sk_test_…` (or a restricted `rk_test_…`) → Allow for the whole API
 * with the key's scopes in the context and the merchant's usage-plan key, cached 300 s by API Gateway per key.
 */
const deps = merchantDepsFromEnv(); // SDK client and config once per cold start

export const handler = lambda<APIGatewayRequestAuthorizerEvent, APIGatewayAuthorizerResult>().handler(async (event) => {
  const header = Object.entries(event.headers ?? {}).find(([name]) => name.toLowerCase() === 'authorization')?.[1];
  try {
    const auth = await authenticate(deps, parseBearer(header));
    logger.info('api key accepted', { merchantId: auth.merchantId, keyId: auth.keyId });
    return allowWholeApi(event.methodArn, auth);
  } catch (error) {
    if (error instanceof AuthenticationError) {
      // The code and key id at most: never the key, nor the header.
      logger.info('api key rejected', { code: error.code, keyId: error.extra?.key_id });
      throw new Error('Unauthorized'); // API Gateway's literal for a 401
    }
    throw error; // anything else (e.g. DynamoDB unavailable) is a 500, never a cached deny
  }
});
