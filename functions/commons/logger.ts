import { Logger } from '@aws-lambda-powertools/logger';

/** One structured logger per cold start. Never pass request bodies, keys or payer data to it. */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'payplane' });
