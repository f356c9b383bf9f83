import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetPublicKeyCommand } from '@aws-sdk/client-kms';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../commons/clients';
import { open, seal } from '../commons/crypto';
import { Secret } from '../commons/secret';
import { kms, notificationEnv } from './aws';
import { jwkThumbprint, type PlatformSigner, type PublicJwk } from './signing';

/**
 * The platform's webhook signing key: Ed25519, generated once per stage by whichever function needs it first
 * (a conditional put: the first writer wins, every other reads the winner's), its private half sealed under the
 * stack's KMS key with commons/crypto.ts, and opened once per cold start. So signing costs no KMS call per
 * delivery (a KMS Sign would be ≈ $15 per million deliveries and share the account's ECC request quota):
 * one Decrypt per cold start (docs/webhooks.md, "The platform signature").
 *
 *   key  pk PLATFORMKEY  sk ED25519  {kid, public_jwk: {kty, crv, x}, private_key: sealed PKCS#8 (base64), created_at}
 *
 * kid = the RFC 7638 thumbprint of the public JWK.
 */
export const PLATFORM_KEY = { pk: 'PLATFORMKEY', sk: 'ED25519' } as const;
/** The sealing binding: not a merchant's value, so the merchant slot names the platform. */
const binding = (kid: string) => ({ purpose: 'platform_signing_key', merchantId: 'platform', recordId: kid });

interface PlatformKeyItem {
  pk: string;
  sk: string;
  type: 'platform_key';
  kid: string;
  public_jwk: PublicJwk;
  private_key: Uint8Array;
  created_at: string;
}

async function readKey(table: string): Promise<PlatformKeyItem | undefined> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: table, Key: PLATFORM_KEY, ConsistentRead: true }));
  return Item as PlatformKeyItem | undefined;
}

async function createKey(table: string, now: Date): Promise<PlatformKeyItem> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const { kty, crv, x } = publicKey.export({ format: 'jwk' }) as PublicJwk;
  const jwk = { kty: kty!, crv: crv!, x: x! };
  const kid = jwkThumbprint(jwk);
  const pkcs8 = new Secret(privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'));
  const item: PlatformKeyItem = {
    ...PLATFORM_KEY,
    type: 'platform_key',
    kid,
    public_jwk: jwk,
    private_key: await seal(pkcs8, binding(kid)),
    created_at: now.toISOString(),
  };
  try {
    await dynamo().send(new PutCommand({ TableName: table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }));
    return item;
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    // Another function created it first: theirs is the key.
    const winner = await readKey(table);
    if (!winner) throw new Error('The platform key was created concurrently but cannot be read back');
    return winner;
  }
}

const keyItem = async (table: string) => (await readKey(table)) ?? createKey(table, new Date());

let signer: Promise<PlatformSigner> | undefined;

/** The signer, opened once per cold start (a failure is not cached: the next call tries again). */
export function platformSigner(table: string): Promise<PlatformSigner> {
  signer ??= (async () => {
    const item = await keyItem(table);
    const pkcs8 = await open<string>(item.private_key, binding(item.kid));
    return { kid: item.kid, privateKey: createPrivateKey({ key: Buffer.from(pkcs8.reveal(), 'base64'), format: 'der', type: 'pkcs8' }) };
  })().catch((error) => {
    signer = undefined;
    throw error;
  });
  return signer;
}

export interface Jwks {
  keys: (PublicJwk & { kid: string; alg: string; use: 'sig' })[];
}

let jwks: Promise<Jwks> | undefined;

/**
 * `GET /v1/platform/public_keys`: the webhook key (EdDSA) and the hosted checkout's return-URL key (KMS
 * GetPublicKey of the ECC_NIST_P256 key, ES256), built once per cold start: both keys live as long as the stage.
 */
export function platformJwks(table: string): Promise<Jwks> {
  jwks ??= (async () => {
    const [item, checkout] = await Promise.all([keyItem(table), checkoutJwk()]);
    return {
      keys: [
        { ...item.public_jwk, kid: item.kid, alg: 'EdDSA', use: 'sig' as const },
        { ...checkout, kid: jwkThumbprint(checkout), alg: 'ES256', use: 'sig' as const },
      ],
    };
  })().catch((error) => {
    jwks = undefined;
    throw error;
  });
  return jwks;
}

async function checkoutJwk(): Promise<PublicJwk> {
  const out = await kms().send(new GetPublicKeyCommand({ KeyId: notificationEnv('CHECKOUT_SIGNING_KEY_ARN') }));
  if (!out.PublicKey) throw new Error('KMS GetPublicKey returned no key for CHECKOUT_SIGNING_KEY_ARN');
  const { kty, crv, x, y } = createPublicKey({ key: Buffer.from(out.PublicKey), format: 'der', type: 'spki' }).export({ format: 'jwk' }) as PublicJwk;
  return { kty: kty!, crv: crv!, x: x!, y: y! };
}

/** Tests that change the table or the keys between cases drop the per-cold-start caches. */
export function resetPlatformKeyCache(): void {
  signer = undefined;
  jwks = undefined;
}
