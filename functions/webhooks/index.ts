import { required } from '../commons/config';
import { WebhookEndpointService } from './service';

let service: WebhookEndpointService | undefined;

/** The webhook endpoints service wired to this function's table, built once per cold start. */
export function webhookEndpoints(): WebhookEndpointService {
  service ??= new WebhookEndpointService(required('TABLE_NAME'));
  return service;
}
