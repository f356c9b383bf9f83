import { KMSClient, SignCommand } from '@aws-sdk/client-kms';

/**
 * The return redirect's signature, Alipay style: the parameters (every one but `sign`) sorted by key and
 * joined as `k=v&k=v` with the raw (not URL-encoded) values; that string, UTF-8, is signed with KMS
 * `Sign` (ECDSA_SHA_256, MessageType RAW) under the checkout signing key. `sign` is the DER signature,
 * base64url. Merchants verify with the key's public key (GetPublicKey: DER SubjectPublicKeyInfo), e.g.
 * `crypto.verify('sha256', Buffer.from(canonical), { key: spki, format: 'der', type: 'spki' }, Buffer.from(sign, 'base64url'))`.
 */
export function canonicalString(params: Record<string, string>): string {
  return Object.keys(params)
    .filter((k) => k !== 'sign' && params[k] !== undefined && params[k] !== '')
    .sort()
    .map((k) => `${k}=${params[k]}`)
    .join('&');
}

let kms: KMSClient | undefined;

function signingKeyArn(): string {
  const arn = process.env.CHECKOUT_SIGNING_KEY_ARN;
  if (!arn) throw new Error('Environment variable CHECKOUT_SIGNING_KEY_ARN is not set for this function');
  return arn;
}

export async function signParams(params: Record<string, string>): Promise<string> {
  kms ??= new KMSClient({});
  const out = await kms.send(
    new SignCommand({
      KeyId: signingKeyArn(),
      Message: Buffer.from(canonicalString(params), 'utf8'),
      MessageType: 'RAW',
      SigningAlgorithm: 'ECDSA_SHA_256',
    }),
  );
  if (!out.Signature) throw new Error('KMS Sign returned no signature');
  return Buffer.from(out.Signature).toString('base64url');
}

/**
 * `return_url` with the signed result parameters added (existing query parameters are kept, unsigned).
 * `merchant_id` is signed too: without it, a merchant who pays its own order holds a valid signature for
 * that `merchant_order_no` and amount, which another merchant's return_url would accept.
 */
export async function signedReturnUrl(
  returnUrl: string,
  merchantId: string,
  order: { id: string; merchant_order_no: string; status: string; amount: number; currency: string },
  now: Date,
): Promise<string> {
  const params: Record<string, string> = {
    merchant_id: merchantId,
    order_id: order.id,
    merchant_order_no: order.merchant_order_no,
    status: order.status,
    amount: String(order.amount),
    currency: order.currency,
    ts: String(Math.floor(now.getTime() / 1000)),
  };
  const sign = await signParams(params);
  const url = new URL(returnUrl);
  for (const [k, v] of Object.entries({ ...params, sign })) url.searchParams.set(k, v);
  return url.toString();
}
