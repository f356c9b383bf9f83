import { createHash } from 'node:crypto';

/**
 * The synthesized CloudFormation template, and the one place that turns its intrinsic functions
 * into local values. Every other local module reads resources through `LocalStack`, so a table name,
 * a key ARN or a function ARN is the same string wherever it appears (Lambda environment, API
 * integration URIs, authorizer policies, local.json).
 */

/** The account and region the local cloud pretends to be. */
export const LOCAL_REGION = 'us-east-1';
export const LOCAL_ACCOUNT = '000000000000';
export const LOCAL_PARTITION = 'aws';
export const LOCAL_URL_SUFFIX = 'amazonaws.com';

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
  Condition?: string;
  DependsOn?: string | string[];
}

export interface CfnTemplate {
  Parameters?: Record<string, { Type?: string; Default?: unknown }>;
  Mappings?: Record<string, Record<string, Record<string, unknown>>>;
  Conditions?: Record<string, unknown>;
  Resources: Record<string, CfnResource>;
  Outputs?: Record<string, { Value: unknown }>;
}

/** Thrown when the template uses something the local cloud cannot resolve; says where and what. */
export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

const NO_VALUE = Symbol('AWS::NoValue');

export interface LocalStackOptions {
  /** The stack name (CloudFormation names default physical ids after it). */
  stackName: string;
  region?: string;
  account?: string;
}

/**
 * A template plus the local identity of each of its resources. Physical names follow what
 * CloudFormation would generate (`<stack>-<logicalId>`), without the random suffix, so they are
 * stable across restarts and a persistent DynamoDB Local keeps its tables.
 */
export class LocalStack {
  readonly stackName: string;
  readonly region: string;
  readonly account: string;
  /** Attributes known only at run time (e.g. a table's StreamArn from DynamoDB Local). */
  private readonly lateAttributes = new Map<string, string>();
  /** `Ref` values known only at run time (e.g. a queue URL, which names the local SQS port). */
  private readonly lateRefs = new Map<string, string>();
  /** AWS invoke URL origin of a RestApi → where the local API Gateway serves it. */
  private readonly restApiOrigins = new Map<string, string>();
  private readonly conditionCache = new Map<string, boolean>();

  constructor(
    readonly template: CfnTemplate,
    options: LocalStackOptions,
  ) {
    if (!template || typeof template !== 'object' || !template.Resources) {
      throw new TemplateError('The template has no Resources section: is it a CloudFormation template?');
    }
    this.stackName = options.stackName;
    this.region = options.region ?? LOCAL_REGION;
    this.account = options.account ?? LOCAL_ACCOUNT;
  }

  /** Resources of the given types whose Condition (if any) holds, as [logicalId, resource] pairs. */
  resourcesOfType(...types: string[]): [string, CfnResource][] {
    return Object.entries(this.template.Resources).filter(
      ([id, r]) => types.includes(r.Type) && this.isDeployed(id),
    );
  }

  resource(logicalId: string): CfnResource {
    const r = this.template.Resources[logicalId];
    if (!r) throw new TemplateError(`No resource '${logicalId}' in the template of stack ${this.stackName}.`);
    return r;
  }

  isDeployed(logicalId: string): boolean {
    const condition = this.template.Resources[logicalId]?.Condition;
    return condition === undefined || this.condition(condition);
  }

  /** Records an attribute only known at run time, e.g. `setAttribute('Table', 'StreamArn', arn)`. */
  setAttribute(logicalId: string, attribute: string, value: string): void {
    this.lateAttributes.set(`${logicalId}.${attribute}`, value);
  }

  /**
   * Where the local API Gateway serves a RestApi (`http://127.0.0.1:<port>`): a template value that is the
   * RestApi's invoke URL (`https://<id>.execute-api.<region>.amazonaws.com/<stage>…`, as the stack builds
   * the stage's public base URL) resolves to this origin instead, so functions build public URLs that work here.
   */
  serveRestApi(logicalId: string, origin: string): void {
    this.restApiOrigins.set(`https://${this.restApiId(logicalId)}.execute-api.${this.region}.${LOCAL_URL_SUFFIX}`, origin);
  }

  /** Records what `Ref` returns for a resource once a service knows it, e.g. `setRef('Queue', url)`. */
  setRef(logicalId: string, value: string): void {
    this.lateRefs.set(logicalId, value);
  }

  // ---- local identities -------------------------------------------------------------------

  /** `<stack>-<logicalId>` cut to `max` characters, like CloudFormation's generated names. */
  generatedName(logicalId: string, max = 64): string {
    const name = `${this.stackName}-${logicalId}`;
    return name.length <= max ? name : name.slice(0, max);
  }

  tableName(logicalId: string): string {
    const explicit = this.resource(logicalId).Properties?.TableName;
    return explicit !== undefined ? String(this.resolve(explicit, `${logicalId}.TableName`)) : this.generatedName(logicalId, 255);
  }

  functionName(logicalId: string): string {
    const explicit = this.resource(logicalId).Properties?.FunctionName;
    return explicit !== undefined ? String(this.resolve(explicit, `${logicalId}.FunctionName`)) : this.generatedName(logicalId, 64);
  }

  functionArn(logicalId: string): string {
    return `arn:${LOCAL_PARTITION}:lambda:${this.region}:${this.account}:function:${this.functionName(logicalId)}`;
  }

  /** A KMS key id is a UUID; derive one from the stack and logical id so it survives restarts. */
  kmsKeyId(logicalId: string): string {
    return deterministicUuid(`${this.stackName}/${logicalId}`);
  }

  kmsKeyArn(logicalId: string): string {
    return `arn:${LOCAL_PARTITION}:kms:${this.region}:${this.account}:key/${this.kmsKeyId(logicalId)}`;
  }

  /** API Gateway ids: 10 lowercase alphanumerics for a RestApi, 6 for a resource (root included). */
  restApiId(logicalId: string): string {
    return shortId(`${this.stackName}/${logicalId}`, 10);
  }

  apiResourceId(logicalId: string): string {
    return shortId(`${this.stackName}/${logicalId}/resource`, 6);
  }

  rootResourceId(restApiLogicalId: string): string {
    return shortId(`${this.stackName}/${restApiLogicalId}/root`, 6);
  }

  /** The logical id of the Lambda function whose local ARN this is, if any. */
  functionByArn(arn: string): string | undefined {
    return this.resourcesOfType('AWS::Lambda::Function').find(([id]) => this.functionArn(id) === arn)?.[0];
  }

  // ---- intrinsic functions ----------------------------------------------------------------

  /**
   * Resolves every intrinsic function in `value`. `where` names the place in the template for
   * error messages (e.g. `CreateOrder.Environment.Variables.TABLE_NAME`).
   */
  resolve(value: unknown, where = 'template'): unknown {
    const out = this.resolveAny(value, where);
    if (typeof out === 'string') {
      for (const [invokeOrigin, origin] of this.restApiOrigins) {
        if (out === invokeOrigin || out.startsWith(`${invokeOrigin}/`)) return origin + out.slice(invokeOrigin.length);
      }
    }
    return out === NO_VALUE ? undefined : out;
  }

  resolveString(value: unknown, where: string): string {
    const out = this.resolve(value, where);
    if (typeof out !== 'string' && typeof out !== 'number' && typeof out !== 'boolean') {
      throw new TemplateError(`${where} resolved to ${JSON.stringify(out)}; a string was expected.`);
    }
    return String(out);
  }

  private resolveAny(value: unknown, where: string): unknown {
    if (Array.isArray(value)) {
      return value.map((v, i) => this.resolveAny(v, `${where}[${i}]`)).filter((v) => v !== NO_VALUE);
    }
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 1) {
      const [key, arg] = entries[0]!;
      if (key === 'Ref') return this.ref(String(arg), where);
      if (key.startsWith('Fn::')) return this.intrinsic(key, arg, where);
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of entries) {
      const resolved = this.resolveAny(v, `${where}.${k}`);
      if (resolved !== NO_VALUE) out[k] = resolved;
    }
    return out;
  }

  private intrinsic(fn: string, arg: unknown, where: string): unknown {
    const at = `${where} (${fn})`;
    switch (fn) {
      case 'Fn::GetAtt': {
        const [id, ...attr] = Array.isArray(arg) ? (arg as unknown[]).map((a) => this.resolveAny(a, at)) : String(arg).split('.');
        return this.getAtt(String(id), attr.join('.'), at);
      }
      case 'Fn::Join': {
        const [sep, list] = expectArray(arg, 2, at);
        const parts = this.resolveAny(list, at);
        if (!Array.isArray(parts)) throw new TemplateError(`${at}: the second argument must be a list.`);
        return parts.map((p) => scalar(p, at)).join(String(sep));
      }
      case 'Fn::Sub':
        return this.sub(arg, at);
      case 'Fn::Select': {
        const [index, list] = expectArray(arg, 2, at);
        const items = this.resolveAny(list, at);
        const i = Number(this.resolveAny(index, at));
        if (!Array.isArray(items) || !Number.isInteger(i) || i < 0 || i >= items.length) {
          throw new TemplateError(`${at}: index ${i} is out of range for ${JSON.stringify(items)}.`);
        }
        return items[i];
      }
      case 'Fn::Split': {
        const [sep, source] = expectArray(arg, 2, at);
        return String(scalar(this.resolveAny(source, at), at)).split(String(sep));
      }
      case 'Fn::If': {
        const [name, yes, no] = expectArray(arg, 3, at);
        return this.condition(String(name)) ? this.resolveAny(yes, at) : this.resolveAny(no, at);
      }
      case 'Fn::FindInMap': {
        const [map, top, second] = expectArray(arg, 3, at).map((a) => String(scalar(this.resolveAny(a, at), at)));
        const value = this.template.Mappings?.[map!]?.[top!]?.[second!];
        if (value === undefined) throw new TemplateError(`${at}: no mapping ${map}.${top}.${second}.`);
        return value;
      }
      case 'Fn::Base64':
        return Buffer.from(String(scalar(this.resolveAny(arg, at), at)), 'utf8').toString('base64');
      case 'Fn::GetAZs':
        return ['a', 'b', 'c'].map((z) => `${this.region}${z}`);
      case 'Fn::Equals':
      case 'Fn::Not':
      case 'Fn::And':
      case 'Fn::Or':
        return this.evaluateCondition({ [fn]: arg }, at);
      default:
        throw new TemplateError(
          `${at}: ${fn} is not supported by the local cloud. Supported: Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split, Fn::If, Fn::FindInMap, Fn::Base64, Fn::GetAZs and conditions.`,
        );
    }
  }

  private sub(arg: unknown, at: string): string {
    const [text, vars] = Array.isArray(arg) ? (arg as [unknown, unknown]) : [arg, {}];
    const variables = (this.resolveAny(vars ?? {}, at) ?? {}) as Record<string, unknown>;
    return String(text).replace(/\$\{(!?)([^}]+)\}/g, (_m, bang: string, name: string) => {
      if (bang) return `\${${name}}`; // ${!Literal} stays literal
      if (name in variables) return String(scalar(variables[name], at));
      const dot = name.indexOf('.');
      if (dot > 0 && !name.startsWith('AWS::')) return String(this.getAtt(name.slice(0, dot), name.slice(dot + 1), at));
      return String(scalar(this.ref(name, at), at));
    });
  }

  ref(name: string, where: string): unknown {
    switch (name) {
      case 'AWS::Region':
        return this.region;
      case 'AWS::AccountId':
        return this.account;
      case 'AWS::Partition':
        return LOCAL_PARTITION;
      case 'AWS::URLSuffix':
        return LOCAL_URL_SUFFIX;
      case 'AWS::StackName':
        return this.stackName;
      case 'AWS::StackId':
        return `arn:${LOCAL_PARTITION}:cloudformation:${this.region}:${this.account}:stack/${this.stackName}/${deterministicUuid(this.stackName)}`;
      case 'AWS::NoValue':
        return NO_VALUE;
      case 'AWS::NotificationARNs':
        return [];
    }
    const parameter = this.template.Parameters?.[name];
    if (parameter) {
      if (parameter.Default === undefined) throw new TemplateError(`${where}: parameter ${name} has no Default to use locally.`);
      return parameter.Default;
    }
    const resource = this.template.Resources[name];
    if (!resource) throw new TemplateError(`${where}: Ref to '${name}', which is neither a resource, a parameter nor a pseudo parameter.`);
    return this.physicalRef(name, resource);
  }

  /** What `Ref` returns for each resource type (per the CloudFormation resource reference). */
  private physicalRef(id: string, r: CfnResource): string {
    const late = this.lateRefs.get(id);
    if (late !== undefined) return late;
    switch (r.Type) {
      case 'AWS::DynamoDB::Table':
      case 'AWS::DynamoDB::GlobalTable':
        return this.tableName(id);
      case 'AWS::Lambda::Function':
        return this.functionName(id);
      case 'AWS::KMS::Key':
        return this.kmsKeyId(id);
      case 'AWS::KMS::Alias':
        return this.resolveString(r.Properties?.AliasName, `${id}.AliasName`);
      case 'AWS::ApiGateway::RestApi':
        return this.restApiId(id);
      case 'AWS::ApiGateway::Resource':
        return this.apiResourceId(id);
      case 'AWS::ApiGateway::Stage':
        return this.resolveString(r.Properties?.StageName, `${id}.StageName`);
      case 'AWS::ApiGateway::Deployment':
      case 'AWS::ApiGateway::Authorizer':
      case 'AWS::ApiGateway::Method':
        return shortId(`${this.stackName}/${id}`, 6);
      case 'AWS::IAM::Role':
        return this.explicitName(id, 'RoleName') ?? this.generatedName(id);
      case 'AWS::Logs::LogGroup':
        return this.explicitName(id, 'LogGroupName') ?? this.generatedName(id);
      case 'AWS::SQS::Queue':
        // Until the local SQS listens and sets the real URL (setRef): a loopback name, never AWS.
        return `http://sqs.${this.region}.localhost/${this.account}/${this.queueName(id)}`;
      case 'AWS::SNS::Topic':
      case 'AWS::StepFunctions::StateMachine':
        return this.genericArn(id, r);
      case 'AWS::SES::EmailIdentity':
        return this.resolveString(r.Properties?.EmailIdentity, `${id}.EmailIdentity`);
      case 'AWS::SES::ConfigurationSet':
        return this.explicitName(id, 'Name') ?? this.generatedName(id);
      case 'AWS::S3::Bucket':
        return this.bucketName(id);
      default:
        return this.generatedName(id);
    }
  }

  private explicitName(logicalId: string, property: string): string | undefined {
    const value = this.resource(logicalId).Properties?.[property];
    return value === undefined ? undefined : this.resolveString(value, `${logicalId}.${property}`);
  }

  /** The explicit BucketName, else CloudFormation's style of generated name (lower case, at most 63 characters). */
  bucketName(logicalId: string): string {
    return this.explicitName(logicalId, 'BucketName') ?? this.generatedName(logicalId, 63).toLowerCase();
  }

  queueName(logicalId: string): string {
    const p = this.resource(logicalId).Properties ?? {};
    if (p.QueueName !== undefined) return this.resolveString(p.QueueName, `${logicalId}.QueueName`);
    const fifo = p.FifoQueue === true || p.FifoQueue === 'true';
    return fifo ? `${this.generatedName(logicalId, 75)}.fifo` : this.generatedName(logicalId, 80);
  }

  getAtt(id: string, attribute: string, where: string): unknown {
    const late = this.lateAttributes.get(`${id}.${attribute}`);
    if (late !== undefined) return late;
    const r = this.template.Resources[id];
    if (!r) throw new TemplateError(`${where}: Fn::GetAtt on '${id}', which is not a resource of the template.`);
    const arnOf = (service: string, resource: string) =>
      `arn:${LOCAL_PARTITION}:${service}:${this.region}:${this.account}:${resource}`;
    switch (`${r.Type}.${attribute}`) {
      case 'AWS::Lambda::Function.Arn':
        return this.functionArn(id);
      case 'AWS::DynamoDB::Table.Arn':
      case 'AWS::DynamoDB::GlobalTable.Arn':
        return arnOf('dynamodb', `table/${this.tableName(id)}`);
      case 'AWS::DynamoDB::Table.StreamArn':
      case 'AWS::DynamoDB::GlobalTable.StreamArn':
        // Replaced by the real stream ARN once DynamoDB Local created the table (setAttribute).
        return arnOf('dynamodb', `table/${this.tableName(id)}/stream/1970-01-01T00:00:00.000`);
      case 'AWS::DynamoDB::GlobalTable.TableId':
        return deterministicUuid(`${this.stackName}/${id}/table`);
      case 'AWS::KMS::Key.Arn':
        return this.kmsKeyArn(id);
      case 'AWS::KMS::Key.KeyId':
        return this.kmsKeyId(id);
      case 'AWS::ApiGateway::RestApi.RootResourceId':
        return this.rootResourceId(id);
      case 'AWS::ApiGateway::RestApi.RestApiId':
        return this.restApiId(id);
      case 'AWS::ApiGateway::Resource.ResourceId':
        return this.apiResourceId(id);
      case 'AWS::ApiGateway::Authorizer.AuthorizerId':
        return shortId(`${this.stackName}/${id}`, 6);
      case 'AWS::IAM::Role.Arn':
        return `arn:${LOCAL_PARTITION}:iam::${this.account}:role/${this.physicalRef(id, r)}`;
      case 'AWS::IAM::Role.RoleId':
        return `AROA${shortId(id, 17).toUpperCase()}`;
      case 'AWS::Logs::LogGroup.Arn':
        return arnOf('logs', `log-group:${this.physicalRef(id, r)}:*`);
      case 'AWS::SQS::Queue.Arn':
        return arnOf('sqs', this.queueName(id));
      case 'AWS::SQS::Queue.QueueName':
        return this.queueName(id);
      case 'AWS::SQS::Queue.QueueUrl':
        return this.physicalRef(id, r);
      case 'AWS::Events::Rule.Arn':
        return arnOf('events', `rule/${this.generatedName(id)}`);
      case 'AWS::StepFunctions::StateMachine.Arn':
      case 'AWS::SNS::Topic.TopicArn':
        return this.genericArn(id, r);
      case 'AWS::S3::Bucket.Arn':
        return `arn:${LOCAL_PARTITION}:s3:::${this.bucketName(id)}`;
      case 'AWS::StepFunctions::StateMachine.Name':
        return this.generatedName(id, 80);
    }
    if (attribute === 'Arn') return this.genericArn(id, r);
    throw new TemplateError(`${where}: Fn::GetAtt ${id}.${attribute} (${r.Type}) is not supported by the local cloud.`);
  }

  /** `arn:aws:<service>:<region>:<account>:<kind>:<name>` for types without a dedicated rule. */
  private genericArn(id: string, r: CfnResource): string {
    const [, service = 'unknown', kind = 'resource'] = r.Type.split('::');
    const lower = service.toLowerCase();
    if (r.Type === 'AWS::StepFunctions::StateMachine') {
      return `arn:${LOCAL_PARTITION}:states:${this.region}:${this.account}:stateMachine:${this.generatedName(id, 80)}`;
    }
    if (r.Type === 'AWS::SNS::Topic') return `arn:${LOCAL_PARTITION}:sns:${this.region}:${this.account}:${this.generatedName(id, 256)}`;
    return `arn:${LOCAL_PARTITION}:${lower}:${this.region}:${this.account}:${kind.toLowerCase()}/${this.generatedName(id)}`;
  }

  // ---- conditions -------------------------------------------------------------------------

  condition(name: string): boolean {
    const cached = this.conditionCache.get(name);
    if (cached !== undefined) return cached;
    const definition = this.template.Conditions?.[name];
    if (definition === undefined) throw new TemplateError(`Condition '${name}' is not defined in the template.`);
    const value = this.evaluateCondition(definition, `Conditions.${name}`);
    this.conditionCache.set(name, value);
    return value;
  }

  private evaluateCondition(expr: unknown, at: string): boolean {
    if (expr && typeof expr === 'object' && !Array.isArray(expr)) {
      const [[fn, arg]] = Object.entries(expr as Record<string, unknown>) as [[string, unknown]];
      const args = Array.isArray(arg) ? arg : [arg];
      switch (fn) {
        case 'Condition':
          return this.condition(String(arg));
        case 'Fn::Equals': {
          const [a, b] = args.map((x) => this.resolveAny(x, at));
          return JSON.stringify(a) === JSON.stringify(b);
        }
        case 'Fn::Not':
          return !this.evaluateCondition(args[0], at);
        case 'Fn::And':
          return args.every((x) => this.evaluateCondition(x, at));
        case 'Fn::Or':
          return args.some((x) => this.evaluateCondition(x, at));
      }
    }
    throw new TemplateError(`${at}: ${JSON.stringify(expr)} is not a condition.`);
  }
}

function expectArray(arg: unknown, length: number, at: string): unknown[] {
  if (!Array.isArray(arg) || arg.length < length) {
    throw new TemplateError(`${at}: expected a list of ${length} arguments, got ${JSON.stringify(arg)}.`);
  }
  return arg;
}

function scalar(value: unknown, at: string): string | number | boolean {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  throw new TemplateError(`${at}: ${JSON.stringify(value)} cannot be used as a string.`);
}

/** A UUID (version 4 layout) derived from a name, so the same key gets the same id every run. */
export function deterministicUuid(name: string): string {
  const h = createHash('sha256').update(name).digest();
  h[6] = (h[6]! & 0x0f) | 0x40;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const ID_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

/** Lowercase alphanumeric id of `length` characters derived from `name` (API Gateway id style). */
export function shortId(name: string, length: number): string {
  const h = createHash('sha256').update(name).digest();
  let out = '';
  for (let i = 0; out.length < length; i++) out += ID_ALPHABET[h[i % h.length]! % 36];
  return out;
}
