import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { sandboxEnv, sqs } from './aws';

/** A callback job: "deliver the result of this trade". Only ids travel, never card data. */
export interface CallbackJob {
  v: 1;
  out_trade_no: string;
}

/** Where the sandbox bank schedules its asynchronous results. */
export interface CallbackQueue {
  enqueue(job: CallbackJob, delaySeconds: number): Promise<void>;
}

/** The production queue: SQS with DelaySeconds; `deliverSandboxCallbacks` (notifier.ts) consumes it. */
export class SqsCallbackQueue implements CallbackQueue {
  constructor(private readonly queueUrl: () => string = () => sandboxEnv('SANDBOX_CALLBACK_QUEUE_URL')) {}

  async enqueue(job: CallbackJob, delaySeconds: number): Promise<void> {
    await sqs().send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl(),
        MessageBody: JSON.stringify(job),
        DelaySeconds: Math.max(0, Math.min(900, Math.round(delaySeconds))),
      }),
    );
  }
}

export function parseJob(body: string): CallbackJob {
  const job = JSON.parse(body) as Partial<CallbackJob>;
  if (job.v !== 1 || typeof job.out_trade_no !== 'string' || job.out_trade_no === '') {
    throw new Error('not a sandbox callback job (expected {"v":1,"out_trade_no":"…"})');
  }
  return job as CallbackJob;
}
