export { Payplane, type BodyOf, type QueryOf, type ResponseOf } from './client.js';
export type { ClientOptions, RequestOptions } from './http.js';
export { ListCall, type ListPage } from './pagination.js';
export { Webhooks, WebhookVerificationError, type DeliveryHeaders, type VerifyOptions } from './webhooks.js';
export * from './errors.js';
export type { components, paths } from './types.js';
