import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { listen, readBody } from './http';
import { INVALID_TOKEN_MESSAGE, type LocalIam } from './iam';
import type { Outbox } from './outbox';
import type { LocalStack } from './template';

/**
 * An SNS endpoint (the Query protocol: form-encoded `Action=Publish&…`, XML answers, what @aws-sdk/client-sns
 * sends), scoped to the one call the stack makes: `Publish` with `PhoneNumber` (an SMS straight to a phone,
 * no topic). Each accepted SMS becomes a `.json` file in the outbox (local/outbox.ts); the answer is SNS's
 * `<PublishResponse><PublishResult><MessageId>`.
 *
 * IAM: `sns:Publish` on `*`: a publish to a phone number names no topic, so there is no resource ARN to
 * authorize (AWS's policies for SMS grant sns:Publish on "*").
 */

const XMLNS = 'http://sns.amazonaws.com/doc/2010-03-31/';
/** SNS's limit for one SMS publish (it splits longer texts into parts up to this). */
const MAX_SMS_BYTES = 1600;

export class SnsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    readonly sender = true,
  ) {
    super(message);
    this.name = code;
  }
}

export interface SentSms {
  messageId: string;
  file: string;
  to: string;
}

export class LocalSns {
  readonly sent: SentSms[] = [];

  constructor(
    readonly stack: LocalStack,
    private readonly outbox: Outbox,
  ) {}

  publish(params: URLSearchParams, now = new Date()): { MessageId: string } {
    const phone = params.get('PhoneNumber');
    if (params.get('TopicArn') || params.get('TargetArn')) {
      throw new SnsError('InvalidParameter', 'Invalid parameter: the local SNS sends SMS only (PhoneNumber); the stack publishes to no topic or endpoint.');
    }
    if (!phone) throw new SnsError('InvalidParameter', 'Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter');
    if (!/^\+[1-9]\d{6,14}$/.test(phone)) throw new SnsError('InvalidParameter', `Invalid parameter: PhoneNumber Reason: ${phone} is not valid to publish to`);
    const body = params.get('Message');
    if (!body) throw new SnsError('ValidationError', '1 validation error detected: Value null at \'message\' failed to satisfy constraint: Member must not be null');
    if (Buffer.byteLength(body, 'utf8') > MAX_SMS_BYTES) throw new SnsError('InvalidParameter', `Invalid parameter: Message too long (SMS messages can be at most ${MAX_SMS_BYTES} bytes)`);
    const attributes = messageAttributes(params);
    const messageId = randomUUID();
    const file = this.outbox.writeSms({
      to: phone,
      body,
      sent_at: now.toISOString(),
      message_id: messageId,
      ...(attributes['AWS.SNS.SMS.SMSType'] ? { sms_type: attributes['AWS.SNS.SMS.SMSType'] } : {}),
      ...(attributes['AWS.SNS.SMS.SenderID'] ? { sender_id: attributes['AWS.SNS.SMS.SenderID'] } : {}),
    });
    this.sent.push({ messageId, file, to: phone });
    return { MessageId: messageId };
  }
}

/** `MessageAttributes.entry.N.Name` / `.Value.StringValue` → { name: value }. */
function messageAttributes(params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const [key, name] of params) {
    const m = /^MessageAttributes\.entry\.(\d+)\.Name$/.exec(key);
    if (m) out[name] = params.get(`MessageAttributes.entry.${m[1]}.Value.StringValue`) ?? '';
  }
  return out;
}

export interface SnsEndpoint {
  url: string;
  sns: LocalSns;
  stop(): Promise<void>;
}

export async function startSns(stack: LocalStack, options: { outbox: Outbox; iam?: LocalIam; log?: (line: string) => void; port?: number }): Promise<SnsEndpoint> {
  const sns = new LocalSns(stack, options.outbox);
  const server = await listen((req, res) => handleSnsRequest(sns, req, res, options), options.port ?? 0);
  return { url: server.url, sns, stop: () => server.close() };
}

const escapeXml = (s: string) => s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);

function sendXml(res: ServerResponse, status: number, xml: string): void {
  res.writeHead(status, { 'Content-Type': 'text/xml', 'Content-Length': Buffer.byteLength(xml), 'x-amzn-RequestId': randomUUID() });
  res.end(xml);
}

function sendError(res: ServerResponse, error: SnsError): void {
  sendXml(
    res,
    error.status,
    `<ErrorResponse xmlns="${XMLNS}"><Error><Type>${error.sender ? 'Sender' : 'Receiver'}</Type><Code>${error.code}</Code>` +
      `<Message>${escapeXml(error.message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
  );
}

async function handleSnsRequest(sns: LocalSns, req: IncomingMessage, res: ServerResponse, options: { iam?: LocalIam; log?: (line: string) => void }): Promise<void> {
  const raw = await readBody(req, 512 * 1024);
  if (req.method !== 'POST') {
    sendError(res, new SnsError('InvalidAction', 'The local SNS takes POST / with a form-encoded Query request (Action=Publish&…).'));
    return;
  }
  const params = new URLSearchParams(raw.toString('utf8'));
  const action = params.get('Action');
  if (action !== 'Publish') {
    sendError(res, new SnsError('InvalidAction', `The local SNS serves Publish (SMS to a PhoneNumber) only, not ${action ?? 'a request without Action'}: the stack makes no other SNS call.`));
    return;
  }
  const { refuse } = options.iam ? await options.iam.check(req.headers, [{ action: 'sns:Publish', resource: '*' }]) : {};
  if (refuse) {
    if (refuse.unknownKey) sendError(res, new SnsError('InvalidClientTokenId', INVALID_TOKEN_MESSAGE, 403));
    else sendError(res, new SnsError('AuthorizationError', refuse.message, 403));
    return;
  }
  try {
    const { MessageId } = sns.publish(params);
    options.log?.(`SNS: sent SMS ${MessageId} → outbox`);
    sendXml(
      res,
      200,
      `<PublishResponse xmlns="${XMLNS}"><PublishResult><MessageId>${MessageId}</MessageId></PublishResult>` +
        `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></PublishResponse>`,
    );
  } catch (error) {
    if (error instanceof SnsError) sendError(res, error);
    else throw error;
  }
}
