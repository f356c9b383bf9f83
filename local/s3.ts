import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { listen, readBody } from './http';
import type { AccessRequest, LocalIam } from './iam';
import type { LocalStack } from './template';

/**
 * An S3 endpoint (REST-XML, path-style: `/<bucket>/<key>`), scoped to what the stack uses: the signed audit heads
 * (functions/audit/heads.ts). PutObject, GetObject, HeadObject, ListObjectsV2 (prefix, delimiter, continuation) and
 * DeleteObject, on the template's AWS::S3::Bucket resources, versioned, with Object Lock as S3 applies it:
 *
 * - a bucket's default retention (ObjectLockConfiguration) locks every new version; x-amz-object-lock-mode and
 *   -retain-until-date on PutObject set it explicitly (they need Object Lock on the bucket, a Content-MD5 or
 *   x-amz-checksum-* header, and s3:PutObjectRetention);
 * - a PUT to an existing key adds a version and a DELETE without versionId adds a delete marker, as S3 does: the
 *   locked versions stay, readable by versionId;
 * - DeleteObject of a locked version is AccessDenied: always in COMPLIANCE mode, in GOVERNANCE mode unless the
 *   request sends x-amz-bypass-governance-retention and may s3:BypassGovernanceRetention.
 *
 * IAM (local/iam.ts) as S3 asks it: s3:PutObject / s3:GetObject(Version) / s3:DeleteObject(Version) on
 * `arn:aws:s3:::<bucket>/<key>`, s3:ListBucket on the bucket's ARN (with s3:prefix); for an SSE-KMS bucket also
 * kms:GenerateDataKey (writes) or kms:Decrypt (GetObject) on its key, through S3 (`kms:ViaService`).
 *
 * Objects live under `root/<bucket>/`: a key's first version at `<bucket>/<key>` (readable where you expect it),
 * later ones under `<bucket>/.versions/`, and the versions' metadata in `<bucket>/.s3-index.json`.
 */

export interface BucketConfig {
  logicalId: string;
  name: string;
  arn: string;
  lock?: { mode: 'COMPLIANCE' | 'GOVERNANCE'; days: number };
  lockEnabled: boolean;
  /** SSE-KMS key ARN, when the bucket's default encryption is aws:kms. */
  kmsKeyArn?: string;
  bucketKey: boolean;
}

interface Version {
  versionId: string;
  deleteMarker?: boolean;
  lastModified: string;
  etag?: string;
  size?: number;
  contentType?: string;
  lockMode?: 'COMPLIANCE' | 'GOVERNANCE';
  retainUntil?: string;
  /** Relative to the bucket's directory. */
  file?: string;
}

export class S3Error extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = code;
  }
}

/** The template's buckets, with what the emulator applies of their configuration. */
export function bucketConfigs(stack: LocalStack): BucketConfig[] {
  return stack.resourcesOfType('AWS::S3::Bucket').map(([id, r]) => {
    const p = (stack.resolve(r.Properties ?? {}, id) ?? {}) as Record<string, any>;
    const retention = p.ObjectLockConfiguration?.Rule?.DefaultRetention as { Mode?: string; Days?: number; Years?: number } | undefined;
    const sse = p.BucketEncryption?.ServerSideEncryptionConfiguration?.[0];
    const keyId = sse?.ServerSideEncryptionByDefault?.SSEAlgorithm === 'aws:kms' ? sse.ServerSideEncryptionByDefault.KMSMasterKeyID : undefined;
    return {
      logicalId: id,
      name: stack.bucketName(id),
      arn: String(stack.getAtt(id, 'Arn', id)),
      lockEnabled: p.ObjectLockEnabled === true || p.ObjectLockEnabled === 'true',
      lock: retention?.Mode
        ? { mode: retention.Mode as 'COMPLIANCE' | 'GOVERNANCE', days: Number(retention.Days ?? 0) + Number(retention.Years ?? 0) * 365 }
        : undefined,
      kmsKeyArn: typeof keyId === 'string' ? keyArnOf(stack, keyId) : undefined,
      bucketKey: sse?.BucketKeyEnabled === true,
    };
  });
}

function keyArnOf(stack: LocalStack, idOrArn: string): string {
  if (idOrArn.startsWith('arn:')) return idOrArn;
  const key = stack.resourcesOfType('AWS::KMS::Key').find(([id]) => stack.kmsKeyId(id) === idOrArn);
  return key ? stack.kmsKeyArn(key[0]) : `arn:aws:kms:${stack.region}:${stack.account}:key/${idOrArn}`;
}

export class LocalS3 {
  readonly buckets = new Map<string, BucketConfig>();
  private readonly indexes = new Map<string, Record<string, Version[]>>();
  readonly calls: Record<string, number> = {};

  constructor(
    configs: BucketConfig[],
    readonly root: string,
    readonly region: string,
  ) {
    for (const c of configs) this.buckets.set(c.name, c);
  }

  bucket(name: string): BucketConfig {
    const b = this.buckets.get(name);
    if (!b) throw new S3Error('NoSuchBucket', `The specified bucket does not exist (the local S3 has the template's buckets: ${[...this.buckets.keys()].join(', ') || 'none'}).`, 404);
    return b;
  }

  private index(bucket: string): Record<string, Version[]> {
    let index = this.indexes.get(bucket);
    if (!index) {
      const file = join(this.root, bucket, '.s3-index.json');
      index = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, Version[]>) : (Object.create(null) as Record<string, Version[]>);
      this.indexes.set(bucket, index);
    }
    return index;
  }

  private save(bucket: string): void {
    const file = join(this.root, bucket, '.s3-index.json');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(this.index(bucket), null, 1));
  }

  putObject(bucketName: string, key: string, body: Buffer, headers: IncomingHttpHeaders, now = new Date()): Version {
    const bucket = this.bucket(bucketName);
    checkKey(key);
    const lock = lockHeaders(headers);
    if (lock && !bucket.lockEnabled) throw new S3Error('InvalidRequest', 'Bucket is missing Object Lock Configuration');
    if (lock && !headers['content-md5'] && !Object.keys(headers).some((h) => h.startsWith('x-amz-checksum-'))) {
      throw new S3Error('InvalidRequest', 'Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters');
    }
    if (lock && Date.parse(lock.retainUntil) <= now.getTime()) throw new S3Error('InvalidArgument', 'The retain until date must be in the future!');
    const md5 = createHash('md5').update(body).digest();
    if (typeof headers['content-md5'] === 'string' && headers['content-md5'] !== md5.toString('base64')) {
      throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
    }
    const sha = headers['x-amz-checksum-sha256'];
    if (typeof sha === 'string' && sha !== createHash('sha256').update(body).digest('base64')) {
      throw new S3Error('BadDigest', 'The SHA256 you specified did not match the calculated checksum.');
    }
    const index = this.index(bucketName);
    const versions = (index[key] ??= []);
    const versionId = randomBytes(24).toString('base64url');
    const file = versions.length === 0 && !existsSync(join(this.root, bucketName, key)) ? key : join('.versions', versionId);
    mkdirSync(dirname(join(this.root, bucketName, file)), { recursive: true });
    writeFileSync(join(this.root, bucketName, file), body);
    const retention = lock ?? (bucket.lock && { mode: bucket.lock.mode, retainUntil: new Date(now.getTime() + bucket.lock.days * 86_400_000).toISOString() });
    const version: Version = {
      versionId,
      lastModified: now.toISOString(),
      etag: `"${md5.toString('hex')}"`,
      size: body.length,
      contentType: typeof headers['content-type'] === 'string' ? headers['content-type'] : 'binary/octet-stream',
      ...(retention ? { lockMode: retention.mode, retainUntil: retention.retainUntil } : {}),
      file,
    };
    versions.push(version);
    this.save(bucketName);
    return version;
  }

  /** The version asked for, else the current one; a delete marker (or nothing) is NoSuchKey. */
  getObject(bucketName: string, key: string, versionId?: string): { version: Version; body: Buffer } {
    this.bucket(bucketName);
    const versions = this.index(bucketName)[key] ?? [];
    const version = versionId ? versions.find((v) => v.versionId === versionId) : versions.at(-1);
    if (!version && versionId) throw new S3Error('NoSuchVersion', 'The specified version does not exist.', 404);
    if (!version || version.deleteMarker) throw new S3Error('NoSuchKey', 'The specified key does not exist.', 404);
    return { version, body: readFileSync(join(this.root, bucketName, version.file!)) };
  }

  /** A versioned bucket's DELETE: a delete marker without versionId; with one, removes that version unless locked. */
  deleteObject(bucketName: string, key: string, versionId: string | undefined, bypassGovernance: boolean, now = new Date()): { versionId: string; deleteMarker: boolean } {
    this.bucket(bucketName);
    checkKey(key);
    const index = this.index(bucketName);
    const versions = (index[key] ??= []);
    if (!versionId) {
      const marker: Version = { versionId: randomBytes(24).toString('base64url'), deleteMarker: true, lastModified: now.toISOString() };
      versions.push(marker);
      this.save(bucketName);
      return { versionId: marker.versionId, deleteMarker: true };
    }
    const i = versions.findIndex((v) => v.versionId === versionId);
    if (i < 0) return { versionId, deleteMarker: false }; // S3 answers 204 for a version that is not there
    const v = versions[i]!;
    const locked = v.retainUntil !== undefined && Date.parse(v.retainUntil) > now.getTime();
    if (locked && (v.lockMode === 'COMPLIANCE' || !bypassGovernance)) {
      throw new S3Error('AccessDenied', `Access Denied because object protected by object lock (${v.lockMode} until ${v.retainUntil}).`, 403);
    }
    versions.splice(i, 1);
    if (versions.length === 0) delete index[key];
    this.save(bucketName);
    return { versionId, deleteMarker: Boolean(v.deleteMarker) };
  }

  /** ListObjectsV2 over the current (not deleted) objects, in key order. */
  list(bucketName: string, q: URLSearchParams): string {
    this.bucket(bucketName);
    const prefix = q.get('prefix') ?? '';
    const delimiter = q.get('delimiter') ?? '';
    const maxKeys = Math.min(1000, Math.max(0, Number(q.get('max-keys') ?? 1000)));
    const token = q.get('continuation-token');
    const after = token ? Buffer.from(token, 'base64url').toString('utf8') : (q.get('start-after') ?? '');
    const index = this.index(bucketName);
    const keys = Object.keys(index)
      .filter((k) => k.startsWith(prefix) && k > after && index[k]!.length > 0 && !index[k]!.at(-1)!.deleteMarker)
      .sort();
    const contents: { key: string; v: Version }[] = [];
    const prefixes: string[] = [];
    let last: string | undefined;
    let truncated = false;
    for (const k of keys) {
      const cut = delimiter ? k.indexOf(delimiter, prefix.length) : -1;
      const common = cut >= 0 ? k.slice(0, cut + delimiter.length) : undefined;
      if (common && prefixes.at(-1) === common) continue;
      if (contents.length + prefixes.length >= maxKeys) {
        truncated = true;
        break;
      }
      if (common) {
        prefixes.push(common);
        // The next page starts after every key of this common prefix.
        last = `${common}\u{10FFFF}`;
      } else {
        contents.push({ key: k, v: index[k]!.at(-1)! });
        last = k;
      }
    }
    const x = (tag: string, value: string | number | boolean) => `<${tag}>${escapeXml(String(value))}</${tag}>`;
    return (
      `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
      x('Name', bucketName) +
      x('Prefix', prefix) +
      (delimiter ? x('Delimiter', delimiter) : '') +
      x('MaxKeys', maxKeys) +
      x('KeyCount', contents.length + prefixes.length) +
      x('IsTruncated', truncated) +
      (token ? x('ContinuationToken', token) : '') +
      (truncated && last ? x('NextContinuationToken', Buffer.from(last, 'utf8').toString('base64url')) : '') +
      contents.map(({ key, v }) => `<Contents>${x('Key', key)}${x('LastModified', v.lastModified)}${x('ETag', v.etag!)}${x('Size', v.size!)}${x('StorageClass', 'STANDARD')}</Contents>`).join('') +
      prefixes.map((p) => `<CommonPrefixes>${x('Prefix', p)}</CommonPrefixes>`).join('') +
      `</ListBucketResult>`
    );
  }
}

/** Keys become paths under the bucket's directory: no empty, `.` or `..` segment, and not the emulator's own files. */
function checkKey(key: string): void {
  const segments = key.split('/');
  if (!key || segments.some((s) => s === '' || s === '.' || s === '..') || key.startsWith('.s3-index') || key.startsWith('.versions/')) {
    throw new S3Error('InvalidArgument', `The local S3 stores keys as paths: '${key}' has an empty, '.' or '..' segment (the stack writes none).`);
  }
}

function lockHeaders(h: IncomingHttpHeaders): { mode: 'COMPLIANCE' | 'GOVERNANCE'; retainUntil: string } | undefined {
  const mode = h['x-amz-object-lock-mode'];
  const until = h['x-amz-object-lock-retain-until-date'];
  if (mode === undefined && until === undefined) return undefined;
  if (mode !== 'COMPLIANCE' && mode !== 'GOVERNANCE') throw new S3Error('InvalidArgument', `Unknown wormMode directive: ${String(mode)} (x-amz-object-lock-mode is COMPLIANCE or GOVERNANCE).`);
  if (typeof until !== 'string' || Number.isNaN(Date.parse(until))) {
    throw new S3Error('InvalidArgument', 'x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied, the date as an ISO 8601 timestamp.');
  }
  return { mode, retainUntil: new Date(until).toISOString() };
}

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** What IAM is asked for a request (S3's service authorization reference, path-style). */
function accessRequests(s3: LocalS3, method: string, bucketName: string, key: string | undefined, q: URLSearchParams, h: IncomingHttpHeaders): AccessRequest[] {
  const bucket = s3.buckets.get(bucketName);
  const bucketArn = `arn:aws:s3:::${bucketName}`;
  const objectArn = `${bucketArn}/${key}`;
  const viaS3 = (action: string): AccessRequest[] =>
    bucket?.kmsKeyArn
      ? [{ action, resource: bucket.kmsKeyArn, context: { 'kms:ViaService': `s3.${s3.region}.amazonaws.com`, 'kms:EncryptionContext:aws:s3:arn': bucket.bucketKey ? bucketArn : objectArn } }]
      : [];
  const versionId = q.get('versionId');
  if (key === undefined) return [{ action: 's3:ListBucket', resource: bucketArn, context: { 's3:prefix': q.get('prefix') ?? '' } }];
  switch (method) {
    case 'PUT':
      return [{ action: 's3:PutObject', resource: objectArn }, ...(lockHeaders(h) ? [{ action: 's3:PutObjectRetention', resource: objectArn }] : []), ...viaS3('kms:GenerateDataKey')];
    case 'GET':
      return [{ action: versionId ? 's3:GetObjectVersion' : 's3:GetObject', resource: objectArn }, ...viaS3('kms:Decrypt')];
    case 'HEAD':
      return [{ action: versionId ? 's3:GetObjectVersion' : 's3:GetObject', resource: objectArn }];
    case 'DELETE':
      return [
        { action: versionId ? 's3:DeleteObjectVersion' : 's3:DeleteObject', resource: objectArn },
        ...(h['x-amz-bypass-governance-retention'] === 'true' ? [{ action: 's3:BypassGovernanceRetention', resource: objectArn }] : []),
      ];
    default:
      return [];
  }
}

/** Decodes `Content-Encoding: aws-chunked` (the SDK's streaming uploads with a trailing checksum). */
function decodeChunked(raw: Buffer): { body: Buffer; trailers: Record<string, string> } {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = raw.indexOf('\r\n', at);
    if (eol < 0) throw new S3Error('IncompleteBody', 'The aws-chunked body ended inside a chunk header.');
    const size = parseInt(raw.subarray(at, eol).toString('latin1').split(';')[0]!, 16);
    at = eol + 2;
    if (size === 0) break;
    parts.push(raw.subarray(at, at + size));
    at += size + 2;
  }
  const trailers: Record<string, string> = {};
  for (const line of raw.subarray(at).toString('latin1').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { body: Buffer.concat(parts), trailers };
}

export interface S3Endpoint {
  url: string;
  s3: LocalS3;
  stop(): Promise<void>;
}

export async function startS3(stack: LocalStack, options: { root: string; iam?: LocalIam; log?: (line: string) => void; port?: number }): Promise<S3Endpoint> {
  const s3 = new LocalS3(bucketConfigs(stack), options.root, stack.region);
  const server = await listen((req, res) => handleS3Request(s3, req, res, options.iam), options.port ?? 0);
  return { url: server.url, s3, stop: () => server.close() };
}

async function handleS3Request(s3: LocalS3, req: IncomingMessage, res: ServerResponse, iam?: LocalIam): Promise<void> {
  const requestId = randomUUID().replace(/-/g, '').slice(0, 16).toUpperCase();
  const send = (status: number, headers: Record<string, string>, body?: string | Buffer) => {
    res.writeHead(status, { 'x-amz-request-id': requestId, ...(body !== undefined ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}), ...headers });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  const fail = (e: S3Error) =>
    send(
      e.status,
      { 'Content-Type': 'application/xml' },
      `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${e.code}</Code><Message>${escapeXml(e.message)}</Message><RequestId>${requestId}</RequestId></Error>`,
    );
  const url = new URL(req.url ?? '/', 'http://localhost');
  const [, bucketName = '', ...rest] = url.pathname.split('/');
  const key = rest.length ? decodeURIComponent(rest.join('/')) : undefined;
  const method = req.method ?? 'GET';
  const raw = await readBody(req, 16 * 1024 * 1024);
  try {
    const listing = key === undefined || key === '';
    if (!bucketName || (listing && !(method === 'GET' && url.searchParams.get('list-type') === '2'))) {
      throw new S3Error('NotImplemented', `The local S3 serves PutObject, GetObject, HeadObject, DeleteObject and ListObjectsV2 (path-style) only, not ${method} ${url.pathname}${url.search}.`, 501);
    }
    const { refuse } = iam ? await iam.check(req.headers, accessRequests(s3, method, bucketName, listing ? undefined : key, url.searchParams, req.headers)) : {};
    if (refuse) {
      if (refuse.unknownKey) throw new S3Error('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', 403);
      throw new S3Error('AccessDenied', refuse.message, 403);
    }
    s3.calls[listing ? 'ListObjectsV2' : method] = (s3.calls[listing ? 'ListObjectsV2' : method] ?? 0) + 1;
    if (listing) return send(200, { 'Content-Type': 'application/xml' }, s3.list(bucketName, url.searchParams));
    const bucket = s3.bucket(bucketName);
    const sse: Record<string, string> = bucket.kmsKeyArn
      ? { 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': bucket.kmsKeyArn, ...(bucket.bucketKey ? { 'x-amz-server-side-encryption-bucket-key-enabled': 'true' } : {}) }
      : {};
    switch (method) {
      case 'PUT': {
        let body = raw;
        const headers = { ...req.headers };
        if (String(req.headers['content-encoding'] ?? '').includes('aws-chunked')) {
          const decoded = decodeChunked(raw);
          body = decoded.body;
          Object.assign(headers, decoded.trailers);
        }
        const v = s3.putObject(bucketName, key!, body, headers);
        const checksum = Object.fromEntries(Object.entries(headers).filter(([h]) => h.startsWith('x-amz-checksum-')).map(([h, value]) => [h, String(value)]));
        return send(200, { ETag: v.etag!, 'x-amz-version-id': v.versionId, ...sse, ...checksum });
      }
      case 'GET':
      case 'HEAD': {
        const { version: v, body } = s3.getObject(bucketName, key!, url.searchParams.get('versionId') ?? undefined);
        return send(
          200,
          {
            'Content-Type': v.contentType!,
            ETag: v.etag!,
            'Last-Modified': new Date(v.lastModified).toUTCString(),
            'x-amz-version-id': v.versionId,
            ...(v.lockMode ? { 'x-amz-object-lock-mode': v.lockMode, 'x-amz-object-lock-retain-until-date': v.retainUntil! } : {}),
            ...sse,
          },
          body,
        );
      }
      case 'DELETE': {
        const out = s3.deleteObject(bucketName, key!, url.searchParams.get('versionId') ?? undefined, req.headers['x-amz-bypass-governance-retention'] === 'true');
        return send(204, { 'x-amz-version-id': out.versionId, ...(out.deleteMarker ? { 'x-amz-delete-marker': 'true' } : {}) });
      }
      default:
        throw new S3Error('NotImplemented', `The local S3 does not serve ${method} on objects.`, 501);
    }
  } catch (error) {
    if (error instanceof S3Error) return fail(error);
    throw error;
  }
}
