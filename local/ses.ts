import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AwsJsonError, listen, readBody, sendJson } from './http';
import { INVALID_TOKEN_MESSAGE, type AccessRequest, type LocalIam } from './iam';
import type { Outbox } from './outbox';
import type { LocalStack } from './template';

/**
 * An SES v2 endpoint (REST-JSON, what @aws-sdk/client-sesv2 sends), scoped to the one call the stack makes:
 * `SendEmail` (`POST /v2/email/outbound-emails`) with Simple or Raw content. Each accepted message becomes
 * an `.eml` file in the outbox (local/outbox.ts); the answer is SES's `{ MessageId }`.
 *
 * From the template:
 * - identities: AWS::SES::EmailIdentity (a domain or an address). The From address must belong to one
 *   (the address itself, else its domain), or SES's `MessageRejected: Email address is not verified`.
 *   Recipients are not checked: the local SES is out of the sandbox (docs/operations.md for AWS's).
 * - configuration sets: AWS::SES::ConfigurationSet; an unknown ConfigurationSetName is `NotFoundException`.
 *
 * IAM (service authorization reference, SES v2 SendEmail): `ses:SendEmail` on the identity ARN
 * (`arn:aws:ses:<region>:<account>:identity/<identity>`, required), and on the configuration set's ARN
 * when the request names one.
 */

type Json = Record<string, unknown>;

export class SesError extends AwsJsonError {}

export interface SentEmail {
  messageId: string;
  file: string;
  from: string;
  to: string[];
  configurationSet?: string;
}

export class LocalSes {
  readonly identities: string[];
  readonly configurationSets: string[];
  readonly sent: SentEmail[] = [];

  constructor(
    private readonly stack: LocalStack,
    private readonly outbox: Outbox,
  ) {
    this.identities = stack
      .resourcesOfType('AWS::SES::EmailIdentity')
      .map(([id, r]) => stack.resolveString(r.Properties?.EmailIdentity, `${id}.EmailIdentity`).toLowerCase());
    // Ref of a configuration set is its name: the explicit Name, else CloudFormation's generated one.
    this.configurationSets = stack.resourcesOfType('AWS::SES::ConfigurationSet').map(([id]) => stack.resolveString({ Ref: id }, `${id}.Ref`));
  }

  identityArn(identity: string): string {
    return `arn:aws:ses:${this.stack.region}:${this.stack.account}:identity/${identity}`;
  }

  configurationSetArn(name: string): string {
    return `arn:aws:ses:${this.stack.region}:${this.stack.account}:configuration-set/${name}`;
  }

  /** The identity SES authorizes a From address against: the verified address, else its verified domain, else the address. */
  identityOf(from: string): { identity: string; verified: boolean } {
    const address = addressOf(from).toLowerCase();
    const domain = address.slice(address.lastIndexOf('@') + 1);
    if (this.identities.includes(address)) return { identity: address, verified: true };
    if (this.identities.includes(domain)) return { identity: domain, verified: true };
    return { identity: address, verified: false };
  }

  /** What IAM is asked for this request (undefined: the request is malformed and answered as such). */
  accessRequests(input: Json): AccessRequest[] | undefined {
    const from = fromAddressOf(input);
    if (!from) return undefined;
    const requests: AccessRequest[] = [{ action: 'ses:SendEmail', resource: this.identityArn(this.identityOf(from).identity) }];
    if (typeof input.ConfigurationSetName === 'string') requests.push({ action: 'ses:SendEmail', resource: this.configurationSetArn(input.ConfigurationSetName) });
    return requests;
  }

  sendEmail(input: Json, now = new Date()): Json {
    const from = fromAddressOf(input);
    if (!from) throw new SesError('BadRequestException', 'FromEmailAddress is required (the local SES does not read it from Raw content).');
    if (!/^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$/.test(addressOf(from))) throw new SesError('BadRequestException', `Illegal address: ${from}`);
    const destination = (input.Destination ?? {}) as { ToAddresses?: unknown; CcAddresses?: unknown; BccAddresses?: unknown };
    const list = (v: unknown, field: string) => {
      if (v === undefined) return [];
      if (!Array.isArray(v) || v.some((a) => typeof a !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(addressOf(a)))) {
        throw new SesError('BadRequestException', `Destination.${field} must be a list of email addresses.`);
      }
      return v as string[];
    };
    const to = list(destination.ToAddresses, 'ToAddresses');
    const cc = list(destination.CcAddresses, 'CcAddresses');
    const bcc = list(destination.BccAddresses, 'BccAddresses');
    if (to.length + cc.length + bcc.length === 0) throw new SesError('BadRequestException', 'Missing final destination: give Destination.ToAddresses.');
    if (to.length + cc.length + bcc.length > 50) throw new SesError('BadRequestException', 'Recipient count exceeds 50.');
    const { verified } = this.identityOf(from);
    if (!verified) {
      throw new SesError(
        'MessageRejected',
        `Email address is not verified. The following identities failed the check in region ${this.stack.region.toUpperCase()}: ${addressOf(from)} ` +
          `(the local SES verifies the template's AWS::SES::EmailIdentity resources: ${this.identities.join(', ') || 'none'})`,
      );
    }
    const configurationSet = input.ConfigurationSetName as string | undefined;
    if (configurationSet !== undefined && !this.configurationSets.includes(configurationSet)) {
      throw new SesError('NotFoundException', `Configuration set <${configurationSet}> does not exist.`, 404);
    }
    const content = (input.Content ?? {}) as { Simple?: Json; Raw?: { Data?: unknown }; Template?: unknown };
    const messageId = sesMessageId(now);
    let file: string;
    if (content.Simple) {
      const simple = content.Simple as { Subject?: { Data?: unknown }; Body?: { Text?: { Data?: unknown }; Html?: { Data?: unknown } } };
      const subject = simple.Subject?.Data;
      if (typeof subject !== 'string') throw new SesError('BadRequestException', 'Content.Simple.Subject.Data is required.');
      const text = simple.Body?.Text?.Data;
      const html = simple.Body?.Html?.Data;
      if (typeof text !== 'string' && typeof html !== 'string') throw new SesError('BadRequestException', 'Content.Simple.Body needs Text or Html.');
      file = this.outbox.writeEmail({
        messageId,
        from,
        to,
        cc,
        replyTo: Array.isArray(input.ReplyToAddresses) ? (input.ReplyToAddresses as string[]) : undefined,
        subject,
        text: typeof text === 'string' ? text : undefined,
        html: typeof html === 'string' ? html : undefined,
        configurationSet,
        date: now,
      });
    } else if (content.Raw) {
      if (typeof content.Raw.Data !== 'string') throw new SesError('BadRequestException', 'Content.Raw.Data must be the base64 of the MIME message.');
      file = this.outbox.writeRawEmail(messageId, now, Buffer.from(content.Raw.Data, 'base64'));
    } else if (content.Template) {
      throw new SesError('BadRequestException', 'The local SES supports Simple and Raw content, not Template (the stack sends no templated email).');
    } else {
      throw new SesError('BadRequestException', 'Content is required: Simple, Raw or Template.');
    }
    this.sent.push({ messageId, file, from: addressOf(from), to: [...to, ...cc, ...bcc].map(addressOf), configurationSet });
    return { MessageId: messageId };
  }
}

function fromAddressOf(input: Json): string | undefined {
  return typeof input.FromEmailAddress === 'string' && input.FromEmailAddress !== '' ? input.FromEmailAddress : undefined;
}

/** `Name <a@b>` → `a@b`. */
function addressOf(address: string): string {
  return (/<([^>]+)>\s*$/.exec(address)?.[1] ?? address).trim();
}

/** SES's shape: `0100` + 12 hex of time, a UUID, `-000000`. */
function sesMessageId(now: Date): string {
  return `0100${now.getTime().toString(16).padStart(12, '0')}-${randomUUID()}-000000`;
}

export interface SesEndpoint {
  url: string;
  ses: LocalSes;
  stop(): Promise<void>;
}

export async function startSes(stack: LocalStack, options: { outbox: Outbox; iam?: LocalIam; log?: (line: string) => void; port?: number }): Promise<SesEndpoint> {
  const ses = new LocalSes(stack, options.outbox);
  const server = await listen((req, res) => handleSesRequest(ses, req, res, options), options.port ?? 0);
  return { url: server.url, ses, stop: () => server.close() };
}

async function handleSesRequest(ses: LocalSes, req: IncomingMessage, res: ServerResponse, options: { iam?: LocalIam; log?: (line: string) => void }): Promise<void> {
  const headers = { 'x-amzn-RequestId': randomUUID() };
  const fail = (error: SesError) => sendJson(res, error.status, { message: error.message }, { ...headers, 'x-amzn-ErrorType': error.type });
  const path = (req.url ?? '').split('?')[0];
  const raw = await readBody(req, 40 * 1024 * 1024);
  if (req.method !== 'POST' || path !== '/v2/email/outbound-emails') {
    fail(new SesError('BadRequestException', `The local SES v2 serves SendEmail (POST /v2/email/outbound-emails) only, not ${req.method} ${path}: the stack makes no other SES call.`, 404));
    return;
  }
  let input: Json;
  try {
    input = JSON.parse(raw.toString('utf8') || '{}') as Json;
    if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new Error('not an object');
  } catch {
    fail(new SesError('BadRequestException', 'The request body is not a JSON object.'));
    return;
  }
  const { refuse } = options.iam ? await options.iam.check(req.headers, ses.accessRequests(input)) : {};
  if (refuse) {
    if (refuse.unknownKey) fail(new SesError('UnrecognizedClientException', INVALID_TOKEN_MESSAGE, 403));
    else fail(new SesError('AccessDeniedException', refuse.message, 403));
    return;
  }
  try {
    const output = ses.sendEmail(input);
    options.log?.(`SES: sent ${output.MessageId} → outbox`);
    sendJson(res, 200, output, headers);
  } catch (error) {
    if (error instanceof SesError) fail(error);
    else throw error;
  }
}
