import { createHmac } from 'node:crypto';
import { GenerateMacCommand, KMSClient } from '@aws-sdk/client-kms';
import { Secret } from '../commons/secret';

/**
 * Card fingerprints: HMAC-SHA256 of the PAN under keys only the platform holds, so the same card gives the
 * same value and the value cannot be reversed or recomputed by anyone without the key (a plain hash of a
 * 16-digit PAN could be brute-forced). Two per card, each under its own key derived from one root key:
 * - `merchant`: what the merchant sees (payment_method_details.card.fingerprint). The key is derived with the
 *   merchant id, so the same card gives another value at every merchant and merchants cannot link a card
 *   across each other.
 * - `platform`: the same at every merchant, for the card-testing velocity limit (velocity.ts) only. It is
 *   never in a response or a log, hence the Secret.
 *
 * - `KmsFingerprinter` (FINGERPRINT_KEY_ARN set): the root key is derived once per cold start as
 *   KMS GenerateMac(HMAC_256 key, a fixed label), then used in process. KMS MACs are deterministic, so
 *   every execution environment derives the same key and the same card gets the same fingerprints
 *   everywhere, at one KMS call per cold start instead of one per payment. The derived key lives only in
 *   memory, in functions already allowed to call GenerateMac on that key.
 * - `HmacFingerprinter`: node:crypto with a root key held in a Secret (tests, and the local cloud without the key).
 * The two give different values for the same card: a stage uses one of them for its whole life.
 */
export interface CardFingerprints {
  merchant: string;
  platform: Secret<string>;
}

export interface Fingerprinter {
  fingerprint(pan: Secret<string>, merchantId: string): Promise<CardFingerprints>;
}

const encode = (mac: Uint8Array) => Buffer.from(mac).subarray(0, 16).toString('base64url');

/** Changing it changes every fingerprint: a new label is a new fingerprint space. */
const DERIVATION_LABEL = 'payplane/card-fingerprint/v1';

export class KmsFingerprinter implements Fingerprinter {
  #derived?: Promise<HmacFingerprinter>;

  constructor(
    private readonly keyId: string,
    private readonly client: () => KMSClient = defaultKms,
  ) {}

  async fingerprint(pan: Secret<string>, merchantId: string): Promise<CardFingerprints> {
    this.#derived ??= this.derive().catch((error: unknown) => {
      this.#derived = undefined; // a failed derivation is retried by the next payment
      throw error;
    });
    return (await this.#derived).fingerprint(pan, merchantId);
  }

  private async derive(): Promise<HmacFingerprinter> {
    const out = await this.client().send(
      new GenerateMacCommand({ KeyId: this.keyId, MacAlgorithm: 'HMAC_SHA_256', Message: Buffer.from(DERIVATION_LABEL, 'utf8') }),
    );
    if (!out.Mac) throw new Error(`KMS GenerateMac returned no MAC for ${this.keyId}`);
    return new HmacFingerprinter(new Secret(out.Mac));
  }
}

export class HmacFingerprinter implements Fingerprinter {
  /** The platform-wide key; merchants' keys are derived per call (one HMAC, cheaper than a cache). */
  readonly #platform: Buffer;

  constructor(private readonly key: Secret<Uint8Array>) {
    if (key.reveal().length < 32) throw new RangeError('HmacFingerprinter needs a key of at least 32 bytes');
    this.#platform = this.subkey('platform');
  }

  async fingerprint(pan: Secret<string>, merchantId: string): Promise<CardFingerprints> {
    const mac = (key: Buffer) => encode(createHmac('sha256', key).update(pan.reveal(), 'utf8').digest());
    // Merchant ids are `mch_` + base62, so no id can spell the platform label.
    return { merchant: mac(this.subkey(`merchant/${merchantId}`)), platform: new Secret(mac(this.#platform)) };
  }

  private subkey(label: string): Buffer {
    return createHmac('sha256', this.key.reveal()).update(label, 'utf8').digest();
  }
}

let kms: KMSClient | undefined;
const defaultKms = () => (kms ??= new KMSClient({}));

/**
 * From the environment: FINGERPRINT_KEY_ARN → KMS; else FINGERPRINT_KEY (base64, ≥ 32 bytes) → in
 * process. Neither set is a configuration error, thrown when the first card is fingerprinted.
 */
export function fingerprinterFromEnv(env: NodeJS.ProcessEnv = process.env): Fingerprinter {
  if (env.FINGERPRINT_KEY_ARN) return new KmsFingerprinter(env.FINGERPRINT_KEY_ARN);
  if (env.FINGERPRINT_KEY) return new HmacFingerprinter(new Secret(Buffer.from(env.FINGERPRINT_KEY, 'base64')));
  return {
    fingerprint: async () => {
      throw new Error('Set FINGERPRINT_KEY_ARN (a KMS HMAC_256 key) or FINGERPRINT_KEY (base64, at least 32 bytes) to fingerprint cards');
    },
  };
}
