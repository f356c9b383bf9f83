import { constants, createHash, privateEncrypt, publicDecrypt, randomBytes, sign, verify, type KeyObject } from 'node:crypto';

/**
 * The signature primitives behind the local KMS's Sign / Verify, for both message types:
 * - RAW: node:crypto signs and verifies the message (hashing it itself);
 * - DIGEST: the caller already hashed. node:crypto cannot sign a precomputed digest, so:
 *   RSASSA-PKCS1-v1_5 = RSA private operation on DigestInfo || digest (PKCS#1 padding);
 *   RSASSA-PSS = EMSA-PSS encoding (RFC 8017 §9.1, MGF1 with the same hash, salt = digest length, as KMS
 *   does) + raw RSA; ECDSA = the textbook algorithm over the curve in BigInt (DER-encoded signature, as
 *   KMS returns it).
 * Either way the signatures are the standard ones, so `crypto.verify` with the DER public key from
 * GetPublicKey checks them, which is what a merchant will do.
 */

export type Hash = 'sha256' | 'sha384' | 'sha512';
export type Scheme = 'pkcs1' | 'pss' | 'ecdsa';

export interface SigningAlgorithm {
  name: string;
  scheme: Scheme;
  hash: Hash;
  digestBytes: number;
}

export const SIGNING_ALGORITHMS: Record<string, SigningAlgorithm> = Object.fromEntries(
  (['pkcs1', 'pss', 'ecdsa'] as const).flatMap((scheme) =>
    (['sha256', 'sha384', 'sha512'] as const).map((hash) => {
      const bits = hash.slice(3);
      const name = { pkcs1: `RSASSA_PKCS1_V1_5_SHA_${bits}`, pss: `RSASSA_PSS_SHA_${bits}`, ecdsa: `ECDSA_SHA_${bits}` }[scheme];
      return [name, { name, scheme, hash, digestBytes: Number(bits) / 8 }];
    }),
  ),
);

/** DER DigestInfo prefixes (RFC 8017 §9.2 note 1). */
const DIGEST_INFO: Record<Hash, Buffer> = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

export function signMessage(alg: SigningAlgorithm, privateKey: KeyObject, message: Buffer, digest: boolean): Buffer {
  if (!digest) {
    if (alg.scheme === 'pss') return sign(alg.hash, message, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: alg.digestBytes });
    return sign(alg.hash, message, privateKey);
  }
  switch (alg.scheme) {
    case 'pkcs1':
      return privateEncrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([DIGEST_INFO[alg.hash], message]));
    case 'pss': {
      const modBits = privateKey.asymmetricKeyDetails!.modulusLength!;
      const em = emsaPssEncode(message, modBits - 1, alg.hash, alg.digestBytes);
      return privateEncrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, leftPad(em, Math.ceil(modBits / 8)));
    }
    case 'ecdsa':
      return ecdsaSignDigest(privateKey, message);
  }
}

export function verifyMessage(alg: SigningAlgorithm, publicKey: KeyObject, message: Buffer, signature: Buffer, digest: boolean): boolean {
  try {
    if (!digest) {
      if (alg.scheme === 'pss') {
        return verify(alg.hash, message, { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: alg.digestBytes }, signature);
      }
      return verify(alg.hash, message, publicKey, signature);
    }
    switch (alg.scheme) {
      case 'pkcs1':
        return publicDecrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, signature).equals(Buffer.concat([DIGEST_INFO[alg.hash], message]));
      case 'pss': {
        const modBits = publicKey.asymmetricKeyDetails!.modulusLength!;
        const k = Math.ceil(modBits / 8);
        if (signature.length !== k) return false;
        const em = publicDecrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, signature);
        const emLen = Math.ceil((modBits - 1) / 8);
        if (em.subarray(0, k - emLen).some((b) => b !== 0)) return false;
        return emsaPssVerify(message, em.subarray(k - emLen), modBits - 1, alg.hash, alg.digestBytes);
      }
      case 'ecdsa':
        return ecdsaVerifyDigest(publicKey, message, signature);
    }
  } catch {
    return false;
  }
}

// ---- EMSA-PSS (RFC 8017 §9.1) -------------------------------------------------------------------

function mgf1(seed: Buffer, length: number, hash: Hash): Buffer {
  const out: Buffer[] = [];
  for (let counter = 0; out.length * seed.length < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    out.push(createHash(hash).update(seed).update(c).digest());
  }
  return Buffer.concat(out).subarray(0, length);
}

function emsaPssEncode(mHash: Buffer, emBits: number, hash: Hash, sLen: number): Buffer {
  const hLen = mHash.length;
  const emLen = Math.ceil(emBits / 8);
  if (emLen < hLen + sLen + 2) throw new Error('encoding error');
  const salt = randomBytes(sLen);
  const h = createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  const db = Buffer.concat([Buffer.alloc(emLen - sLen - hLen - 2), Buffer.from([1]), salt]);
  const masked = xor(db, mgf1(h, emLen - hLen - 1, hash));
  masked[0]! &= 0xff >> (8 * emLen - emBits);
  return Buffer.concat([masked, h, Buffer.from([0xbc])]);
}

function emsaPssVerify(mHash: Buffer, em: Buffer, emBits: number, hash: Hash, sLen: number): boolean {
  const hLen = mHash.length;
  const emLen = Math.ceil(emBits / 8);
  if (em.length !== emLen || emLen < hLen + sLen + 2 || em[emLen - 1] !== 0xbc) return false;
  const masked = em.subarray(0, emLen - hLen - 1);
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  if ((masked[0]! & ~(0xff >> (8 * emLen - emBits)) & 0xff) !== 0) return false;
  const db = xor(masked, mgf1(h, emLen - hLen - 1, hash));
  db[0]! &= 0xff >> (8 * emLen - emBits);
  const psLen = emLen - hLen - sLen - 2;
  if (db.subarray(0, psLen).some((b) => b !== 0) || db[psLen] !== 1) return false;
  const salt = db.subarray(db.length - sLen);
  return createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest().equals(h);
}

const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((x, i) => x ^ b[i]!));
const leftPad = (b: Buffer, length: number) => (b.length >= length ? b : Buffer.concat([Buffer.alloc(length - b.length), b]));

// ---- ECDSA over a precomputed digest --------------------------------------------------------------

interface Curve {
  p: bigint;
  a: bigint;
  n: bigint;
  g: Point;
}
type Point = { x: bigint; y: bigint } | null;

const h = (hex: string) => BigInt(`0x${hex.replace(/\s/g, '')}`);

/** SEC 2 / FIPS 186-4 parameters, by the JWK curve name node:crypto exports. */
const CURVES: Record<string, Curve> = {
  'P-256': {
    p: h('ffffffff00000001000000000000000000000000ffffffffffffffffffffffff'),
    a: h('ffffffff00000001000000000000000000000000fffffffffffffffffffffffc'),
    n: h('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'),
    g: {
      x: h('6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296'),
      y: h('4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5'),
    },
  },
  'P-384': {
    p: h('fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff'),
    a: h('fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000fffffffc'),
    n: h('ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973'),
    g: {
      x: h('aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7'),
      y: h('3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f'),
    },
  },
  'P-521': {
    p: (1n << 521n) - 1n,
    a: (1n << 521n) - 4n,
    n: h('01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409'),
    g: {
      x: h('00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66'),
      y: h('011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650'),
    },
  },
  secp256k1: {
    p: h('fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f'),
    a: 0n,
    n: h('fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141'),
    g: {
      x: h('79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798'),
      y: h('483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8'),
    },
  },
};

const mod = (a: bigint, m: bigint) => ((a % m) + m) % m;

function inverse(a: bigint, m: bigint): bigint {
  let [r0, r1] = [mod(a, m), m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return mod(s0, m);
}

function add(c: Curve, P: Point, Q: Point): Point {
  if (!P) return Q;
  if (!Q) return P;
  if (P.x === Q.x && mod(P.y + Q.y, c.p) === 0n) return null;
  const l =
    P.x === Q.x && P.y === Q.y ? mod((3n * P.x * P.x + c.a) * inverse(2n * P.y, c.p), c.p) : mod((Q.y - P.y) * inverse(Q.x - P.x, c.p), c.p);
  const x = mod(l * l - P.x - Q.x, c.p);
  return { x, y: mod(l * (P.x - x) - P.y, c.p) };
}

function multiply(c: Curve, k: bigint, P: Point): Point {
  let result: Point = null;
  let addend = P;
  for (let e = k; e > 0n; e >>= 1n) {
    if (e & 1n) result = add(c, result, addend);
    addend = add(c, addend, addend);
  }
  return result;
}

const fromB64u = (s: string) => BigInt(`0x${Buffer.from(s, 'base64url').toString('hex') || '0'}`);

function curveOf(key: KeyObject): { curve: Curve; jwk: { crv: string; x: string; y: string; d?: string } } {
  const jwk = key.export({ format: 'jwk' }) as { crv: string; x: string; y: string; d?: string };
  const curve = CURVES[jwk.crv];
  if (!curve) throw new Error(`Unsupported curve ${jwk.crv}`);
  return { curve, jwk };
}

/** The digest as an integer, truncated to the bit length of n (FIPS 186-4 §6.4). */
function digestInteger(digest: Buffer, n: bigint): bigint {
  const e = BigInt(`0x${digest.toString('hex') || '0'}`);
  const excess = digest.length * 8 - n.toString(2).length;
  return excess > 0 ? e >> BigInt(excess) : e;
}

function randomScalar(n: bigint): bigint {
  const bytes = Math.ceil(n.toString(2).length / 8) + 8;
  return mod(BigInt(`0x${randomBytes(bytes).toString('hex')}`), n - 1n) + 1n;
}

function ecdsaSignDigest(privateKey: KeyObject, digest: Buffer): Buffer {
  const { curve, jwk } = curveOf(privateKey);
  const d = fromB64u(jwk.d!);
  const z = digestInteger(digest, curve.n);
  for (;;) {
    const k = randomScalar(curve.n);
    const R = multiply(curve, k, curve.g)!;
    const r = mod(R.x, curve.n);
    if (r === 0n) continue;
    const s = mod(inverse(k, curve.n) * (z + r * d), curve.n);
    if (s === 0n) continue;
    return derSignature(r, s);
  }
}

function ecdsaVerifyDigest(publicKey: KeyObject, digest: Buffer, signature: Buffer): boolean {
  const { curve, jwk } = curveOf(publicKey);
  const parsed = parseDerSignature(signature);
  if (!parsed) return false;
  const { r, s } = parsed;
  if (r <= 0n || r >= curve.n || s <= 0n || s >= curve.n) return false;
  const Q = { x: fromB64u(jwk.x), y: fromB64u(jwk.y) };
  const w = inverse(s, curve.n);
  const z = digestInteger(digest, curve.n);
  const X = add(curve, multiply(curve, mod(z * w, curve.n), curve.g), multiply(curve, mod(r * w, curve.n), Q));
  return X !== null && mod(X.x, curve.n) === r;
}

/** The public point d·G, to check the curve constants against node:crypto's own key generation. */
export function publicPointOf(privateKey: KeyObject): { x: bigint; y: bigint } {
  const { curve, jwk } = curveOf(privateKey);
  return multiply(curve, fromB64u(jwk.d!), curve.g)!;
}

// ---- DER (SEQUENCE { INTEGER r, INTEGER s }) -------------------------------------------------------

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes = Buffer.from(n.toString(16).padStart(n > 0xff ? 4 : 2, '0'), 'hex');
  return Buffer.concat([Buffer.from([0x80 | bytes.length]), bytes]);
}

function derInteger(v: bigint): Buffer {
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return Buffer.concat([Buffer.from([0x02]), derLength(bytes.length), bytes]);
}

function derSignature(r: bigint, s: bigint): Buffer {
  const body = Buffer.concat([derInteger(r), derInteger(s)]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

function parseDerSignature(sig: Buffer): { r: bigint; s: bigint } | undefined {
  let i = 0;
  const readLength = (): number => {
    const first = sig[i++]!;
    if (first < 0x80) return first;
    let n = 0;
    for (let k = 0; k < (first & 0x7f); k++) n = (n << 8) | sig[i++]!;
    return n;
  };
  if (sig[i++] !== 0x30) return undefined;
  const total = readLength();
  if (i + total !== sig.length) return undefined;
  const ints: bigint[] = [];
  for (let k = 0; k < 2; k++) {
    if (sig[i++] !== 0x02) return undefined;
    const len = readLength();
    if (len === 0 || i + len > sig.length) return undefined;
    ints.push(BigInt(`0x${sig.subarray(i, i + len).toString('hex')}`));
    i += len;
  }
  return i === sig.length ? { r: ints[0]!, s: ints[1]! } : undefined;
}
