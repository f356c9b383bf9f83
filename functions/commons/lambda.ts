import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { usageMetrics } from './metrics';

/** Every Lambda entry point starts here, so what all of them need is added in one place. */
export const lambda = <TEvent, TResult>() => middy<TEvent, TResult, Error, Context>().use(usageMetrics());
