import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { required } from '../commons/config';
import { lambda } from '../commons/lambda';
import { errorResponse } from '../http/errors';
import { platformJwks } from '../notifications/platform-key';

/**
 * GET /v1/platform/public_keys (public): the JWKS that verifies Payplane-Platform-Signature (EdDSA) and the
 * checkout's signed return_url (ES256). Cacheable: the keys live as long as the stage.
 */
export const handler = lambda<APIGatewayProxyEvent, APIGatewayProxyResult>().handler(async (event): Promise<APIGatewayProxyResult> => {
  try {
    const jwks = await platformJwks(required('TABLE_NAME'));
    return {
      statusCode: 200,
      headers: { 'Content-Type': 'application/jwk-set+json', 'Cache-Control': 'public, max-age=3600', 'Request-Id': event.requestContext.requestId },
      body: JSON.stringify(jwks),
    };
  } catch (error) {
    const response = errorResponse(error, event.requestContext.requestId);
    return { ...response, headers: { ...response.headers, 'Request-Id': event.requestContext.requestId } };
  }
});
