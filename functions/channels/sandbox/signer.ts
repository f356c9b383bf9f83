import { createHmac, timingSafeEqual } from 'node:crypto';
import { GenerateMacCommand, KMSClient, KMSInvalidMacException, VerifyMacCommand } from '@aws-sdk/client-kms';

/**
 * How the sandbox signs its notifications and how the platform checks them. In AWS both sides use one
 * KMS HMAC_256 key (GenerateMac / VerifyMac): the key never leaves KMS, the notifier function may only
 * GenerateMac and the notify handler may only VerifyMac, as a PSP's private key and the merchant's copy of
 * its public key would be split. Tests without a KMS endpoint use `HmacSigner` with the same contract.
 */
export interface MacSigner {
  sign(message: Uint8Array): Promise<Uint8Array>;
  /** False when the MAC does not match; throws only when the signer itself fails. */
  verify(message: Uint8Array, mac: Uint8Array): Promise<boolean>;
}

export class KmsMacSigner implements MacSigner {
  private readonly key: () => string;

  /** `keyId`: a key id, ARN or alias, or a function giving one when first needed (e.g. from the environment). */
  constructor(
    keyId: string | (() => string),
    private readonly client: () => KMSClient,
  ) {
    this.key = typeof keyId === 'string' ? () => keyId : keyId;
  }

  async sign(message: Uint8Array): Promise<Uint8Array> {
    const out = await this.client().send(new GenerateMacCommand({ KeyId: this.key(), MacAlgorithm: 'HMAC_SHA_256', Message: message }));
    if (!out.Mac) throw new Error(`KMS GenerateMac returned no MAC for ${this.key()}`);
    return out.Mac;
  }

  async verify(message: Uint8Array, mac: Uint8Array): Promise<boolean> {
    try {
      const out = await this.client().send(
        new VerifyMacCommand({ KeyId: this.key(), MacAlgorithm: 'HMAC_SHA_256', Message: message, Mac: mac }),
      );
      return out.MacValid === true;
    } catch (error) {
      // KMS answers a MAC that does not match with KMSInvalidMacException, not MacValid: false.
      if (error instanceof KMSInvalidMacException || (error as Error).name === 'KMSInvalidMacException') return false;
      throw error;
    }
  }
}

/** HMAC-SHA256 in process (tests, and anything that cannot reach KMS). */
export class HmacSigner implements MacSigner {
  constructor(private readonly key: Uint8Array) {
    if (key.length < 32) throw new RangeError('HmacSigner needs a key of at least 32 bytes');
  }

  async sign(message: Uint8Array): Promise<Uint8Array> {
    return createHmac('sha256', this.key).update(message).digest();
  }

  async verify(message: Uint8Array, mac: Uint8Array): Promise<boolean> {
    const expected = createHmac('sha256', this.key).update(message).digest();
    return mac.length === expected.length && timingSafeEqual(expected, mac);
  }
}
