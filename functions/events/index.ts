import { required } from '../commons/config';
import { EventService } from './service';

let service: EventService | undefined;

/** The events API's service wired to this function's table, built once per cold start. */
export function events(): EventService {
  service ??= new EventService(required('TABLE_NAME'));
  return service;
}
