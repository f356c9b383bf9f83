import { required } from '../commons/config';
import { OrderRepository } from './repository';
import { OrderService } from './service';

let service: OrderService | undefined;

/** The order service wired to this function's table, built once per cold start. */
export function orders(): OrderService {
  service ??= new OrderService(new OrderRepository(required('TABLE_NAME')));
  return service;
}
