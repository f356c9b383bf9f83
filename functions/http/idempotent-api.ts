import { langOf, route, type ApiRequest, type ApiResult, type ApiTextResult } from './api';
import { fingerprint, idempotent, validateKey } from './idempotency';

/**
 * `api()` for the routes that change things (every POST): an `Idempotency-Key` claims `<merchant>#<key>`
 * before the operation runs and fixes the ids it creates; a duplicate gets the stored answer
 * (docs/architecture.md, "Idempotency").
 */
export function idempotentApi(operation: (request: ApiRequest) => Promise<ApiResult | ApiTextResult>) {
  return route(operation, (event, context, request, run) => {
    const key = event.headers['idempotency-key'];
    if (event.httpMethod !== 'POST' || key === undefined) return run();
    return idempotent(
      {
        merchantId: request.merchantId,
        key: validateKey(key),
        fingerprint: fingerprint(event.httpMethod, event.resource, request.params, request.body),
        requestId: request.requestId,
        lockMillis: context.getRemainingTimeInMillis(),
        lang: langOf(event),
      },
      run,
    );
  });
}
