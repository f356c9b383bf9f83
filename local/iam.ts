import { createHash, timingSafeEqual } from 'node:crypto';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingHttpHeaders } from 'node:http';
import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import { PROJECT_ROOT } from './assembly';
import type { LocalStack } from './template';

/**
 * IAM for the local cloud: who is calling (the access key id in the SigV4 `Authorization` header), and
 * whether the synthesized template lets that principal make the call. Every local endpoint (the
 * DynamoDB proxy, KMS, SQS, the API Gateway control plane) asks `authorize()` before it serves a
 * request; API Gateway and EventBridge ask `authorizeService()` before they invoke a function.
 *
 * Decisions come from @cloud-copilot/iam-simulate (identity policies, resource policies, conditions),
 * never from code here: this module only collects the template's policies and the request's context.
 * Principals:
 * - one per function: `assumed-role/<role name>/<function name>`, with the role's AWS::IAM::Policy,
 *   inline and template-defined managed policies;
 * - the operator (CLI, demo seed): the policy docs/operations.md tells operators to attach,
 *   docs/operator-policy.json, with its placeholders filled in from the stack;
 * - the administrator (`LOCAL_CREDENTIALS`, access key `local`): the account's own admin, used by the
 *   local cloud's bootstrap (tables) and by tests that inspect state behind the product's back.
 *   It is allowed everything, so it proves nothing and no function or operator path uses it.
 *
 * `aws:SecureTransport` is true for every call: the endpoints listen on loopback only, which is the
 * transport guarantee TLS gives in AWS (see local/README.md).
 */

export type IamMode = 'enforce' | 'audit';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** The administrator's key (tests that inspect tables, the local cloud's own bootstrap). */
export const ADMIN_ACCESS_KEY_ID = 'local';
/** The operator's key: the CLI and the demo seed against the local cloud. */
export const OPERATOR_CREDENTIALS: Credentials = { accessKeyId: 'AKIAPAYPLANEOPERATOR', secretAccessKey: 'local-operator' };
/** What AWS says for an access key id it does not know. */
export const INVALID_TOKEN_MESSAGE = 'The security token included in the request is invalid.';
export const OPERATOR_POLICY_FILE = join(PROJECT_ROOT, 'docs', 'operator-policy.json');

type PolicyDocument = { Version?: string; Statement: Statement[] | Statement };
interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Principal?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

export interface Principal {
  /** Report key: the function's logical id, `operator` or `admin`. */
  name: string;
  kind: 'function' | 'operator' | 'admin' | 'service' | 'role';
  /** What AWS names in an AccessDenied message: the assumed-role session ARN. */
  arn: string;
  /** The role (or user) ARN, `aws:PrincipalArn`. */
  principalArn: string;
  policies: { name: string; policy: PolicyDocument }[];
}

export interface AccessRequest {
  action: string;
  resource: string;
  /** Condition keys of the request (kms:EncryptionContext:…, kms:ViaService, aws:SourceArn…). */
  context?: Record<string, string | string[]>;
}

export interface Denial {
  action: string;
  resource: string;
  principal: string;
  /** AWS's own wording: "User: <arn> is not authorized to perform: <action> on resource: <arn> because …". */
  message: string;
}

export interface UsageReport {
  mode: IamMode;
  principals: Record<
    string,
    {
      arn: string;
      /** `action resource` pairs that were allowed. */
      used: string[];
      /** Granted `action resource` pairs (from Allow statements) that no allowed call matched. */
      unused: string[];
      refusals: string[];
    }
  >;
}

/** A request as it arrived, for SigV4 verification: the path as sent (still percent-encoded). */
export interface SignedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** What a SigV4 check found: the principal, or why it failed (each with AWS's own wording). */
export type SignatureCheck =
  | { ok: true; principal: Principal; accessKeyId: string }
  | { ok: false; problem: 'missing' | 'incomplete' | 'unknown_key' | 'mismatch' | 'expired'; message: string };

/** How far a request's X-Amz-Date may be from the clock, as AWS allows. */
const SIGNATURE_SKEW_MS = 15 * 60 * 1000;
export const SIGNATURE_MISMATCH_MESSAGE =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

/** A refusal in the caller's service's wire format is up to the endpoint; this is what it needs. */
export type Verdict = { allowed: true } | { allowed: false; denial: Denial; served: boolean };

interface Usage {
  used: Set<string>;
  refusals: Set<string>;
}

export class LocalIam {
  readonly mode: IamMode;
  private readonly byKey = new Map<string, Principal>();
  private readonly functionKeys = new Map<string, Credentials>();
  /** Secret access key by access key id: what a SigV4 signature is recomputed with. */
  private readonly secrets = new Map<string, string>();
  private readonly decisions = new Map<string, Promise<Omit<Denial, 'principal'> | undefined>>();
  private readonly usage = new Map<string, Usage>();
  private resourcePolicyCache?: Map<string, PolicyDocument>;
  private readonly log: (line: string) => void;
  /** Evaluations run (cache misses) and their total time, for the overhead figure. */
  readonly timing = { evaluations: 0, evaluationMs: 0, calls: 0 };

  constructor(
    private readonly stack: LocalStack,
    options: { mode?: IamMode; log?: (line: string) => void; operatorPolicy?: PolicyDocument } = {},
  ) {
    this.mode = options.mode ?? 'enforce';
    this.log = options.log ?? ((line) => process.stderr.write(`[iam] ${line}\n`));
    for (const [logicalId, fn] of stack.resourcesOfType('AWS::Lambda::Function')) {
      const roleId = roleLogicalId(stack, fn.Properties?.Role);
      const roleName = roleId ? String(stack.ref(roleId, `${logicalId}.Role`)) : `${stack.stackName}-${logicalId}-role`;
      const functionName = stack.functionName(logicalId);
      const credentials: Credentials = {
        // 20 characters like a real ASIA… key, stable across restarts, unique per function.
        accessKeyId: `ASIA${createHash('sha256').update(`${stack.stackName}/${logicalId}`).digest('hex').slice(0, 16).toUpperCase()}`,
        secretAccessKey: `local-${logicalId}`,
        sessionToken: `local-session-${logicalId}`,
      };
      this.functionKeys.set(logicalId, credentials);
      const principal: Principal = {
        name: logicalId,
        kind: 'function',
        arn: `arn:aws:sts::${stack.account}:assumed-role/${roleName}/${functionName}`,
        principalArn: `arn:aws:iam::${stack.account}:role/${roleName}`,
        policies: [],
      };
      let loaded = false;
      // Policies resolve lazily: some ARNs (a stream's) are only known once the services run.
      Object.defineProperty(principal, 'policies', {
        get: () => {
          if (!loaded) {
            loaded = true;
            Object.defineProperty(principal, 'policies', { value: roleId ? rolePolicies(stack, roleId) : [] });
          }
          return (principal as { policies: Principal['policies'] }).policies;
        },
        configurable: true,
      });
      this.byKey.set(credentials.accessKeyId, principal);
      this.secrets.set(credentials.accessKeyId, credentials.secretAccessKey);
    }
    const operatorPolicy = options.operatorPolicy ?? loadOperatorPolicy(stack);
    this.byKey.set(OPERATOR_CREDENTIALS.accessKeyId, {
      name: 'operator',
      kind: 'operator',
      arn: `arn:aws:sts::${stack.account}:assumed-role/PayplaneOperator/operator`,
      principalArn: `arn:aws:iam::${stack.account}:role/PayplaneOperator`,
      policies: [{ name: 'docs/operator-policy.json', policy: operatorPolicy }],
    });
    this.secrets.set(OPERATOR_CREDENTIALS.accessKeyId, OPERATOR_CREDENTIALS.secretAccessKey);
    this.secrets.set(ADMIN_ACCESS_KEY_ID, 'local');
    this.byKey.set(ADMIN_ACCESS_KEY_ID, {
      name: 'admin',
      kind: 'admin',
      arn: `arn:aws:iam::${stack.account}:root`,
      principalArn: `arn:aws:iam::${stack.account}:root`,
      policies: [{ name: 'AdministratorAccess', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] } }],
    });
  }

  /** The credentials a function's environments get (AWS_ACCESS_KEY_ID names its role). */
  credentialsFor(functionLogicalId: string): Credentials {
    const c = this.functionKeys.get(functionLogicalId);
    if (!c) throw new Error(`No function '${functionLogicalId}' in the template: no credentials for it.`);
    return c;
  }

  /** The principal the access key id of a SigV4 `Authorization` header names, if any. */
  principalOf(headers: IncomingHttpHeaders): Principal | undefined {
    const key = accessKeyOf(headers);
    return key === undefined ? undefined : this.byKey.get(key);
  }

  /**
   * A role of the template assumed by a service (a state machine's RoleArn, a schedule's target role):
   * `assumed-role/<role name>/<session>` with the role's identity policies, in the report under the role's
   * logical id. Undefined when the ARN names no role of the template (nothing would grant it anything).
   */
  rolePrincipal(roleArn: string, session: string): Principal | undefined {
    const roleId = roleLogicalId(this.stack, roleArn);
    if (!roleId) return undefined;
    const key = `ASIAROLE${createHash('sha256').update(`${this.stack.stackName}/${roleId}`).digest('hex').slice(0, 12).toUpperCase()}`;
    const known = this.byKey.get(key);
    if (known) return known;
    const roleName = String(this.stack.ref(roleId, `${roleId}.RoleName`));
    let policies: Principal['policies'] | undefined;
    const stack = this.stack;
    const principal: Principal = {
      name: roleId,
      kind: 'role',
      arn: `arn:aws:sts::${stack.account}:assumed-role/${roleName}/${session}`,
      principalArn: `arn:aws:iam::${stack.account}:role/${roleName}`,
      get policies() {
        return (policies ??= rolePolicies(stack, roleId));
      },
    };
    this.byKey.set(key, principal);
    return principal;
  }

  principalByName(name: string): Principal | undefined {
    for (const p of this.byKey.values()) if (p.name === name) return p;
    return undefined;
  }

  /**
   * Verifies a request's SigV4 signature as AWS does: the `Authorization` header's access key names the principal,
   * and the signature is recomputed with that key's secret over the canonical request (method, path, query, the
   * headers it lists as signed, the body's SHA-256) and the credential scope it names. X-Amz-Date must be within
   * 15 minutes of the clock. Used where AWS itself authenticates the caller (API Gateway's AWS_IAM methods).
   */
  async verifySignature(request: SignedRequest, service: string, now = new Date()): Promise<SignatureCheck> {
    const checked = await verifySigV4(request, service, (key) => this.secrets.get(key), now);
    if (!checked.ok) return checked;
    const principal = this.byKey.get(checked.accessKeyId);
    return principal ? { ok: true, principal, accessKeyId: checked.accessKeyId } : { ok: false, problem: 'unknown_key', message: INVALID_TOKEN_MESSAGE };
  }

  /**
   * What an endpoint asks before serving a request: the caller from its SigV4 header, then `requests`
   * (none = nothing to evaluate, e.g. an unknown key id that the operation itself answers). `refuse` is
   * what to answer instead of serving: an unknown access key, or a denial in enforce mode.
   */
  async check(headers: IncomingHttpHeaders, requests: AccessRequest[] | undefined): Promise<{ refuse?: { unknownKey: true } | { unknownKey: false; message: string } }> {
    const principal = this.principalOf(headers);
    if (!principal) return { refuse: { unknownKey: true } };
    if (!requests?.length) return {};
    const verdict = await this.authorize(principal, requests);
    return verdict.allowed || verdict.served ? {} : { refuse: { unknownKey: false, message: verdict.denial.message } };
  }

  /**
   * Evaluates every request (all must be allowed, as for TransactWriteItems' per-item actions).
   * In audit mode a refusal is logged and `served: true`; in enforce mode the caller must refuse.
   */
  async authorize(principal: Principal, requests: AccessRequest[]): Promise<Verdict> {
    this.timing.calls++;
    if (principal.kind === 'admin') return { allowed: true };
    for (const request of requests) {
      const denied = await this.decide(principal, request);
      const usage = this.usageOf(principal.name);
      if (!denied) {
        usage.used.add(`${request.action} ${request.resource}`);
        continue;
      }
      const denial = { ...denied, principal: principal.arn };
      usage.refusals.add(`${request.action} ${request.resource}`);
      this.log(`${this.mode === 'enforce' ? 'REFUSED' : 'AUDIT (served)'} ${principal.name}: ${denial.message}`);
      return { allowed: false, denial, served: this.mode === 'audit' };
    }
    return { allowed: true };
  }

  /**
   * A service principal invoking a function (API Gateway, EventBridge): only the function's resource
   * policy (its AWS::Lambda::Permission resources) can allow it, with `aws:SourceArn` as the condition.
   */
  async authorizeService(service: string, functionArn: string, sourceArn: string): Promise<Verdict> {
    const principal: Principal = { name: service, kind: 'service', arn: service, principalArn: service, policies: [] };
    return this.authorize(principal, [{ action: 'lambda:InvokeFunction', resource: functionArn, context: { 'aws:SourceArn': sourceArn, 'aws:SourceAccount': this.stack.account } }]);
  }

  report(): UsageReport {
    const principals: UsageReport['principals'] = {};
    for (const principal of this.byKey.values()) {
      if (principal.kind === 'admin' || principal.kind === 'service') continue;
      const usage = this.usageOf(principal.name);
      const used = [...usage.used].sort();
      const unused = grantedPairs(principal)
        .filter((grant) => !used.some((u) => grantCovers(grant, u)))
        .sort();
      principals[principal.name] = { arn: principal.arn, used, unused, refusals: [...usage.refusals].sort() };
    }
    return { mode: this.mode, principals };
  }

  private usageOf(name: string): Usage {
    let u = this.usage.get(name);
    if (!u) this.usage.set(name, (u = { used: new Set(), refusals: new Set() }));
    return u;
  }

  /** One simulation per (principal, action, resource, context); undefined = allowed. */
  private decide(principal: Principal, request: AccessRequest): Promise<Omit<Denial, 'principal'> | undefined> {
    const context: Record<string, string | string[]> = {
      'aws:SecureTransport': 'true',
      'aws:PrincipalArn': principal.principalArn,
      'aws:PrincipalAccount': this.stack.account,
      'aws:RequestedRegion': this.stack.region,
      ...request.context,
    };
    const cacheKey = JSON.stringify([principal.arn, request.action, request.resource, Object.entries(context).sort()]);
    let decision = this.decisions.get(cacheKey);
    if (!decision) {
      if (this.decisions.size > 50_000) this.decisions.clear();
      decision = this.simulate(principal, request, context);
      this.decisions.set(cacheKey, decision);
    }
    return decision;
  }

  private async simulate(principal: Principal, request: AccessRequest, context: Record<string, string | string[]>): Promise<Omit<Denial, 'principal'> | undefined> {
    const started = performance.now();
    const resourcePolicy = this.resourcePolicies().get(request.resource);
    const simulation: Simulation = {
      identityPolicies: withEncryptionContextKeys(principal.policies) as Simulation['identityPolicies'],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(resourcePolicy ? { resourcePolicy: withEncryptionContextKeys(resourcePolicy) as Simulation['resourcePolicy'] } : {}),
      request: {
        action: request.action,
        principal: principal.arn,
        resource: { accountId: this.stack.account, resource: request.resource },
        contextVariables: withEncryptionContextKeys(context),
      },
    };
    const result = await runSimulation(simulation, {});
    this.timing.evaluations++;
    this.timing.evaluationMs += performance.now() - started;
    const base = `User: ${principal.arn} is not authorized to perform: ${request.action} on resource: ${request.resource}`;
    if (result.resultType === 'error') {
      // An action or resource the evaluator does not know is a bug in the local cloud's mapping: say so.
      return { action: request.action, resource: request.resource, message: `${base} because the request could not be evaluated (${JSON.stringify(result.errors)})` };
    }
    if (result.overallResult === 'Allowed') return undefined;
    const analysis = result.resultType === 'single' ? result.result.analysis : undefined;
    const explicitResource = (analysis?.resourceAnalysis?.denyStatements?.length ?? 0) > 0;
    const explicitIdentity = (analysis?.identityAnalysis?.denyStatements?.length ?? 0) > 0;
    const why =
      result.overallResult === 'ExplicitlyDenied'
        ? explicitResource && !explicitIdentity
          ? 'with an explicit deny in a resource-based policy'
          : 'with an explicit deny in an identity-based policy'
        : principal.kind === 'service'
          ? 'because no resource-based policy allows the ' + request.action + ' action'
          : 'because no identity-based policy allows the ' + request.action + ' action';
    return { action: request.action, resource: request.resource, message: `${base} ${why}` };
  }

  /** KMS key policies, SQS queue policies and Lambda permissions, by resource ARN. */
  private resourcePolicies(): Map<string, PolicyDocument> {
    if (this.resourcePolicyCache) return this.resourcePolicyCache;
    const s = this.stack;
    const out = new Map<string, PolicyDocument>();
    const add = (arn: string, statements: Statement[]) => {
      const doc = out.get(arn) ?? { Version: '2012-10-17', Statement: [] };
      (doc.Statement as Statement[]).push(...statements);
      out.set(arn, doc);
    };
    for (const [id, key] of s.resourcesOfType('AWS::KMS::Key')) {
      const policy = s.resolve(key.Properties?.KeyPolicy, `${id}.KeyPolicy`) as PolicyDocument | undefined;
      // Without a KeyPolicy, KMS's default gives the account (so its IAM policies) full use.
      add(s.kmsKeyArn(id), policy ? statementsOf(policy) : [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${s.account}:root` }, Action: 'kms:*', Resource: '*' }]);
    }
    for (const [id, qp] of s.resourcesOfType('AWS::SQS::QueuePolicy')) {
      const policy = s.resolve(qp.Properties?.PolicyDocument, `${id}.PolicyDocument`) as PolicyDocument;
      for (const queue of (qp.Properties?.Queues as unknown[]) ?? []) {
        const logicalId = (queue as { Ref?: string }).Ref;
        if (logicalId) add(String(s.getAtt(logicalId, 'Arn', `${id}.Queues`)), statementsOf(policy));
      }
    }
    for (const [id, permission] of s.resourcesOfType('AWS::Lambda::Permission')) {
      const p = s.resolve(permission.Properties, id) as Record<string, string>;
      const fnArn = p.FunctionName!.startsWith('arn:') ? p.FunctionName!.replace(/:(\$LATEST|\d+)$/, '') : s.functionArn(s.resourcesOfType('AWS::Lambda::Function').find(([f]) => s.functionName(f) === p.FunctionName)?.[0] ?? p.FunctionName!);
      const condition: Statement['Condition'] = {};
      if (p.SourceArn) condition.ArnLike = { 'AWS:SourceArn': p.SourceArn };
      if (p.SourceAccount) condition.StringEquals = { 'AWS:SourceAccount': p.SourceAccount };
      const principal = p.Principal!.endsWith('.amazonaws.com') ? { Service: p.Principal } : { AWS: p.Principal };
      add(fnArn, [{ Sid: id, Effect: 'Allow', Principal: principal, Action: p.Action!, Resource: fnArn, ...(Object.keys(condition).length ? { Condition: condition } : {}) }]);
    }
    this.resourcePolicyCache = out;
    return out;
  }
}

/**
 * iam-simulate (0.1.173) fills in a variable condition key only after a '/' (`aws:PrincipalTag/<k>`), so it
 * renames every `kms:EncryptionContext:<k>` of a request to the spec's `kms:EncryptionContext:${EncryptionContextKey}`,
 * and a policy conditioned on one never matches. Both sides are carried under a '/'-form key of the same type
 * (String) instead; no principal of the stack has tags, so nothing else answers to it.
 */
const ENCRYPTION_CONTEXT_KEY = /kms:EncryptionContext:/gi;
const ENCRYPTION_CONTEXT_CARRIER = 'aws:PrincipalTag/kms-encryption-context:';
function withEncryptionContextKeys<T>(value: T): T {
  const text = JSON.stringify(value);
  const carried = text.replace(ENCRYPTION_CONTEXT_KEY, ENCRYPTION_CONTEXT_CARRIER);
  return carried === text ? value : (JSON.parse(carried) as T);
}

/**
 * SigV4 verification on its own (LocalIam.verifySignature, and test stand-ins of an AWS_IAM endpoint): `secretOf`
 * gives the secret of an access key id, or undefined for a key nobody issued.
 */
export async function verifySigV4(
request: SignedRequest,
service: string,
secretOf: (accessKeyId: string) => string | undefined,
now = new Date(),
): Promise<{ ok: true; accessKeyId: string } | Extract<SignatureCheck, { ok: false }>> {
  const auth = request.headers.authorization;
  if (typeof auth !== 'string' || auth === '') return { ok: false, problem: 'missing', message: 'Missing Authentication Token' };
  const parts = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/.exec(auth);
  const amzDate = header(request.headers, 'x-amz-date');
  if (!parts || !amzDate || !/^\d{8}T\d{6}Z$/.test(amzDate)) {
    return {
      ok: false,
      problem: 'incomplete',
      message: `Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters (AWS4-HMAC-SHA256), and the request an X-Amz-Date header. Authorization=${auth.split(' ')[0]}`,
    };
  }
  const [, accessKeyId, , region, scopeService, signedHeaders, signature] = parts as unknown as [string, string, string, string, string, string, string];
  const secret = secretOf(accessKeyId);
  if (secret === undefined) return { ok: false, problem: 'unknown_key', message: INVALID_TOKEN_MESSAGE };
  const signedAt = new Date(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
  const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  if (signedAt.getTime() < now.getTime() - SIGNATURE_SKEW_MS) {
    return { ok: false, problem: 'expired', message: `Signature expired: ${amzDate} is now earlier than ${stamp(new Date(now.getTime() - SIGNATURE_SKEW_MS))} (${stamp(now)} - 15 min.)` };
  }
  if (signedAt.getTime() > now.getTime() + SIGNATURE_SKEW_MS) {
    return { ok: false, problem: 'expired', message: `Signature not yet current: ${amzDate} is still later than ${stamp(new Date(now.getTime() + SIGNATURE_SKEW_MS))} (${stamp(now)} + 15 min.)` };
  }
  // A claimed body hash must be the body's: the signature covers the claim, not the bytes.
  const bodyHash = createHash('sha256').update(request.body).digest('hex');
  const claimed = header(request.headers, 'x-amz-content-sha256');
  const mismatch = { ok: false, problem: 'mismatch', message: SIGNATURE_MISMATCH_MESSAGE } as const;
  if (claimed !== undefined && claimed !== bodyHash) return mismatch;
  if (scopeService !== service) return mismatch;
  const headers: Record<string, string> = {};
  for (const name of signedHeaders.split(';')) {
    const value = request.headers[name];
    if (value === undefined) return mismatch;
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of request.query) {
    const prev = query[k];
    query[k] = prev === undefined ? v : [...[prev].flat(), v];
  }
  const token = header(request.headers, 'x-amz-security-token');
  const signer = new SignatureV4({
    credentials: { accessKeyId, secretAccessKey: secret, ...(token ? { sessionToken: token } : {}) },
    region,
    service,
    sha256: Hash.bind(null, 'sha256'),
    applyChecksum: false,
    uriEscapePath: true,
  });
  const signed = await signer.sign(
    { method: request.method, protocol: 'http:', hostname: headers.host ?? 'localhost', path: request.path, query, headers, body: request.body },
    { signingDate: signedAt, signableHeaders: new Set(signedHeaders.split(';')) },
  );
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization ?? signed.headers.Authorization))?.[1] ?? '';
  const same = expected.length === signature.length && timingSafeEqual(Buffer.from(expected), Buffer.from(signature));
  return same ? { ok: true, accessKeyId } : mismatch;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

/** The access key id of a SigV4 request: `Authorization: AWS4-HMAC-SHA256 Credential=<key>/<date>/…`. */
export function accessKeyOf(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  if (typeof auth !== 'string') return undefined;
  return /Credential=([^/,\s]+)\//.exec(auth)?.[1];
}

/** The role's identity policies: AWS::IAM::Policy / ManagedPolicy naming it, inline and template managed policies. */
function rolePolicies(stack: LocalStack, roleId: string): Principal['policies'] {
  const role = stack.resource(roleId);
  const roleName = String(stack.ref(roleId, roleId));
  const out: Principal['policies'] = [];
  const namesRole = (roles: unknown, where: string) =>
    Array.isArray(roles) && roles.some((r) => (r as { Ref?: string }).Ref === roleId || stack.resolve(r, where) === roleName);
  for (const [id, r] of stack.resourcesOfType('AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy')) {
    if (namesRole(r.Properties?.Roles, `${id}.Roles`)) out.push({ name: id, policy: stack.resolve(r.Properties?.PolicyDocument, `${id}.PolicyDocument`) as PolicyDocument });
  }
  for (const [i, inline] of ((role.Properties?.Policies as { PolicyName?: unknown; PolicyDocument: unknown }[]) ?? []).entries()) {
    out.push({ name: `${roleId}.Policies[${i}]`, policy: stack.resolve(inline.PolicyDocument, `${roleId}.Policies[${i}]`) as PolicyDocument });
  }
  for (const arn of (role.Properties?.ManagedPolicyArns as unknown[]) ?? []) {
    const ref = (arn as { Ref?: string }).Ref;
    const managed = ref ? stack.template.Resources[ref] : undefined;
    if (managed?.Type === 'AWS::IAM::ManagedPolicy' && !namesRole(managed.Properties?.Roles, `${ref}.Roles`)) {
      out.push({ name: ref!, policy: stack.resolve(managed.Properties?.PolicyDocument, `${ref}.PolicyDocument`) as PolicyDocument });
    }
    // AWS managed policies (arn:aws:iam::aws:policy/…) have no text offline: they grant nothing here, so a
    // function that depends on one is refused locally and the gap is visible.
  }
  return out;
}

function roleLogicalId(stack: LocalStack, role: unknown): string | undefined {
  const getAtt = (role as { 'Fn::GetAtt'?: [string, string] } | undefined)?.['Fn::GetAtt'];
  if (getAtt && getAtt[1] === 'Arn') return getAtt[0];
  if (role === undefined) return undefined;
  const arn = stack.resolve(role);
  return stack.resourcesOfType('AWS::IAM::Role').find(([id]) => stack.getAtt(id, 'Arn', 'Role') === arn)?.[0];
}

function statementsOf(policy: PolicyDocument): Statement[] {
  return Array.isArray(policy.Statement) ? policy.Statement : [policy.Statement];
}

/** docs/operator-policy.json with its `<placeholders>` filled in from the local stack. */
export function loadOperatorPolicy(stack: LocalStack, file = OPERATOR_POLICY_FILE): PolicyDocument {
  const text = readFileSync(file, 'utf8');
  const tables = stack.resourcesOfType('AWS::DynamoDB::Table', 'AWS::DynamoDB::GlobalTable');
  const main = tables.find(([id]) => /^MainTable/.test(id)) ?? tables[0];
  const key = stack.resourcesOfType('AWS::KMS::Key').find(([id]) => /^Key[0-9A-F]{8}$/.test(id)) ?? stack.resourcesOfType('AWS::KMS::Key')[0];
  const api = stack.resourcesOfType('AWS::ApiGateway::RestApi')[0];
  const stage = stack.resourcesOfType('AWS::ApiGateway::Stage')[0];
  const settlement = stack.resourcesOfType('AWS::StepFunctions::StateMachine').find(([id]) => /^SettlementStateMachine/.test(id));
  const settlementArn = settlement ? String(stack.ref(settlement[0], settlement[0])) : undefined;
  const headsBucket = stack.resourcesOfType('AWS::S3::Bucket').find(([id]) => /^AuditHeadsBucket[0-9A-F]{8}$/.test(id));
  const headsKey = stack.resourcesOfType('AWS::KMS::Key').find(([id]) => /^AuditHeadsKey[0-9A-F]{8}$/.test(id));
  const values: Record<string, string> = {
    region: stack.region,
    account: stack.account,
    stage: stack.stackName.replace(/^Payplane-/, ''),
    TableName: main ? stack.tableName(main[0]) : '<no table>',
    KmsKeyArn: key ? stack.kmsKeyArn(key[0]) : '<no key>',
    RestApiId: api ? stack.restApiId(api[0]) : '<no api>',
    StageName: stage ? stack.resolveString(stage[1].Properties?.StageName, 'Stage.StageName') : '<no stage>',
    SettlementStateMachineArn: settlementArn ?? '<no state machine>',
    SettlementStateMachineName: settlementArn?.split(':').at(-1) ?? '<no state machine>',
    AuditHeadsBucketName: headsBucket ? stack.bucketName(headsBucket[0]) : '<no bucket>',
    AuditHeadsKeyArn: headsKey ? stack.kmsKeyArn(headsKey[0]) : '<no key>',
  };
  return JSON.parse(text.replace(/<(\w+)>/g, (m, name: string) => values[name] ?? m)) as PolicyDocument;
}

/** Each Allow statement's `action resource` pairs (what the usage report checks for use). */
function grantedPairs(principal: Principal): string[] {
  const out = new Set<string>();
  for (const { policy } of principal.policies) {
    for (const s of statementsOf(policy)) {
      if (s.Effect !== 'Allow' || !s.Action) continue;
      const conditioned = s.Condition ? ` (${Object.values(s.Condition).flatMap((c) => Object.keys(c)).join(', ')})` : '';
      for (const action of [s.Action].flat()) for (const resource of [s.Resource ?? '*'].flat()) out.add(`${action} ${resource}${conditioned}`);
    }
  }
  return [...out];
}

/** Whether a used `action resource` falls under a granted `action resource[ (conditions)]` (IAM wildcards). */
function grantCovers(grant: string, used: string): boolean {
  const [gAction, gResource] = grant.replace(/ \(.*\)$/, '').split(' ') as [string, string];
  const [uAction, uResource] = used.split(' ') as [string, string];
  return glob(gAction, uAction, true) && glob(gResource, uResource, false);
}

function glob(pattern: string, value: string, caseInsensitive: boolean): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, caseInsensitive ? 'i' : '');
  return re.test(value);
}

/** Who calls, for the per-caller counters: the IAM principal's name (a function's logical id), else the access key id. */
export function callerName(headers: IncomingHttpHeaders, iam?: LocalIam): string {
  return iam?.principalOf(headers)?.name ?? accessKeyOf(headers) ?? 'anonymous';
}
