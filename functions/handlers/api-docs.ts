import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { lambda } from '../commons/lambda';
import { DOCS_ASSETS, DOCS_CSP, page } from '../docs/reference';

/** GET /docs (public): the API reference page; GET /docs/rapidoc.js: its renderer (the spec is GET /v1/openapi.json). */
export const handler = lambda<APIGatewayProxyEvent, APIGatewayProxyResult>().handler(async (event): Promise<APIGatewayProxyResult> => {
  const common = { 'Request-Id': event.requestContext.requestId, 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' };
  const file = DOCS_ASSETS[event.resource];
  if (file) return { statusCode: 200, headers: { ...common, 'Content-Type': file.contentType, 'Cache-Control': file.cacheControl }, body: file.body };
  return {
    statusCode: 200,
    headers: { ...common, 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': DOCS_CSP, 'X-Frame-Options': 'DENY', 'Cache-Control': 'public, max-age=300' },
    // requestContext.path is what the browser asked for (`/dev/docs`); less the resource, the stage's path.
    body: page(event.requestContext.path.slice(0, -event.resource.length)),
  };
});
