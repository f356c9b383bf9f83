import { createPublicKey, verify as cryptoVerify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';

export { WebhookVerificationError };

/** The headers of a delivery: a Node `IncomingHttpHeaders`, a fetch `Headers`, or a plain record. */
export type DeliveryHeaders = Headers | Record<string, string | string[] | undefined>;

export interface VerifyOptions {
  /**
   * Check `Payplane-Platform-Signature` (Ed25519, against the JWKS at `/v1/platform/public_keys`).
   * With no endpoint secret (an order's `notify_url`), it is the only signature and is always checked. @default true
   */
  platformSignature?: boolean;
}

/** Standard Webhooks refuses timestamps further than this from the clock; the platform-only check does the same. */
const TOLERANCE_SECONDS = 5 * 60;
/** An unknown kid refetches the JWKS, at most this often (a forged kid must not make us hammer the route). */
const REFETCH_MS = 60_000;

interface Jwk extends JsonWebKey {
  kid?: string;
  alg?: string;
}

function lowerCase(headers: DeliveryHeaders): Record<string, string> {
  const entries = headers instanceof Headers ? [...headers.entries()] : Object.entries(headers);
  const out: Record<string, string> = {};
  for (const [k, v] of entries) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/**
 * Verifies deliveries: the endpoint's Standard Webhooks signature (the `standardwebhooks` library, unmodified)
 * and the platform's own Ed25519 signature, whose public keys it fetches once and caches by kid.
 */
export class Webhooks {
  private keys = new Map<string, KeyObject>();
  private fetchedAt = 0;
  private inflight: Promise<void> | undefined;

  constructor(
    private readonly jwksUrl: string,
    private readonly fetchImpl: typeof fetch = globalThis.fetch,
  ) {}

  /**
   * The event of a delivery, or a `WebhookVerificationError`. `rawBody` is the exact bytes received (never
   * re-serialized JSON); `secret` the endpoint's `whsec_…` (during a rotation, both: `[newSecret, oldSecret]`),
   * or null for a `notify_url`, which carries only the platform signature.
   */
  async verify<T = unknown>(rawBody: string | Uint8Array, headers: DeliveryHeaders, secret: string | readonly string[] | null, options: VerifyOptions = {}): Promise<T> {
    const h = lowerCase(headers);
    const body = typeof rawBody === 'string' ? rawBody : Buffer.from(rawBody).toString('utf8');
    let event: unknown;
    if (secret !== null) {
      const secrets = typeof secret === 'string' ? [secret] : secret;
      if (secrets.length === 0) throw new WebhookVerificationError('No secret given: pass the endpoint\'s whsec_… secret, or null for a notify_url delivery');
      let lastError: unknown;
      for (const s of secrets) {
        try {
          event = new Webhook(s).verify(body, h);
          break;
        } catch (error) {
          lastError = error;
        }
      }
      if (event === undefined) throw lastError;
    } else {
      const ts = Number(h['webhook-timestamp']);
      if (!Number.isInteger(ts) || Math.abs(Date.now() / 1000 - ts) > TOLERANCE_SECONDS) {
        throw new WebhookVerificationError(`webhook-timestamp ${JSON.stringify(h['webhook-timestamp'])} is missing or more than ${TOLERANCE_SECONDS} s from this clock`);
      }
      event = JSON.parse(body);
    }
    if (secret === null || options.platformSignature !== false) await this.verifyPlatform(body, h);
    return event as T;
  }

  private async verifyPlatform(body: string, h: Record<string, string>): Promise<void> {
    const header = h['payplane-platform-signature'];
    const match = header ? /^kid=([^,]+),sig=([A-Za-z0-9_-]+)$/.exec(header) : null;
    if (!match) throw new WebhookVerificationError('Missing or malformed payplane-platform-signature (expected kid=<kid>,sig=<base64url>)');
    const [, kid, sig] = match as unknown as [string, string, string];
    const key = await this.key(kid);
    const content = Buffer.from(`${h['webhook-id']}.${h['webhook-timestamp']}.${body}`, 'utf8');
    if (!cryptoVerify(null, content, key, Buffer.from(sig, 'base64url'))) {
      throw new WebhookVerificationError(`payplane-platform-signature does not verify with platform key ${kid}`);
    }
  }

  private async key(kid: string): Promise<KeyObject> {
    if (!this.keys.has(kid) && Date.now() - this.fetchedAt > REFETCH_MS) {
      this.inflight ??= this.fetchJwks().finally(() => (this.inflight = undefined));
      await this.inflight;
    }
    const key = this.keys.get(kid);
    if (!key) throw new WebhookVerificationError(`Platform key ${kid} is not in ${this.jwksUrl}`);
    return key;
  }

  private async fetchJwks(): Promise<void> {
    const res = await this.fetchImpl(this.jwksUrl, { headers: { Accept: 'application/jwk-set+json, application/json' }, signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new WebhookVerificationError(`Fetching the platform keys from ${this.jwksUrl} answered HTTP ${res.status}`);
    const { keys } = (await res.json()) as { keys: Jwk[] };
    this.fetchedAt = Date.now();
    // Only the Ed25519 keys sign deliveries; the EC key is the checkout's.
    for (const jwk of keys) if (jwk.kid && jwk.kty === 'OKP' && jwk.crv === 'Ed25519') this.keys.set(jwk.kid, createPublicKey({ key: jwk, format: 'jwk' }));
  }
}
