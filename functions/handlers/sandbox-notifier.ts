import { lambda } from '../commons/lambda';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { deliverSandboxCallbacks } from '../channels/sandbox/notifier';

/**
 * The sandbox PSP's callback sender: SQS (SandboxCallbacks) → sign → POST notify_url. A record that was
 * not delivered is reported as a batch item failure, so SQS redelivers only that one.
 */
export const handler = lambda<SQSEvent, SQSBatchResponse>().handler((event) => deliverSandboxCallbacks(event));
