import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { lambda } from '../commons/lambda';
import spec from '../../docs/openapi.json';

// The committed document, bundled as JSON: the generator (openapi/) and zod's JSON Schema code stay out of Lambda.
const body = JSON.stringify(spec);

/** GET /v1/openapi.json (public): the OpenAPI 3.1 document of this API. */
export const handler = lambda<APIGatewayProxyEvent, APIGatewayProxyResult>().handler(async (event) => ({
  statusCode: 200,
  headers: { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'public, max-age=300', 'Request-Id': event.requestContext.requestId },
  body,
}));
