import { required } from '../commons/config';
import { fingerprinterFromEnv } from './fingerprint';
import { PaymentRepository } from './repository';
import { PaymentService } from './service';

let service: PaymentService | undefined;

/** The payment service wired to this function's table, channel registry and fingerprint key, once per cold start. */
export function payments(): PaymentService {
  service ??= new PaymentService({ repository: new PaymentRepository(required('TABLE_NAME')), fingerprinter: fingerprinterFromEnv() });
  return service;
}

export { PaymentService, type PaymentServiceDeps, type ChannelEventOutcome, type ReconcileSummary } from './service';
export { PaymentRepository } from './repository';
export { HmacFingerprinter, KmsFingerprinter, fingerprinterFromEnv, type CardFingerprints, type Fingerprinter } from './fingerprint';
export * from './payment';
