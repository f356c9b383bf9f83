// The Lambda execution environment of the local cloud: one worker thread = one environment.
// Plain JavaScript on purpose: like Lambda's own Node bootstrap it runs the bundled asset from
// cdk.out without any TypeScript loader. local/lambda.ts starts it and sends it invocations, one at a
// time (an environment never runs two invocations at once, as in Lambda).
//
// Protocol (parentPort):
//   → { type: 'ready', initMs } | { type: 'init-error', error }        once, after loading the handler
//   ← { type: 'invoke', id, event (JSON string), context }
//   → { type: 'result', id, ok: true, payload (JSON string) } | { type: 'result', id, ok: false, error }
//   → { type: 'fatal', error }                                           uncaught exception / rejection
//   → { type: 'fault', faultId }                                         an armed fault fires; the worker exits next
//
// Faults (local/faults.ts): only when workerData.faults is set, node:http.request is wrapped before the
// handler loads, so the AWS SDK's requests pass through `faultPoint`. An invocation carries the faults armed
// for it; the Nth matching call kills the environment before it is sent or once its response arrived.
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import Module from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';

const { taskRoot, handler: handlerSetting, extraNodePaths, faults: faultsEnabled } = workerData;

/** The faults of the running invocation, each with the count of calls that matched so far. */
let armedFaults = [];

function die(fault) {
  parentPort.postMessage({ type: 'fault', faultId: fault.id });
  process.exit(137); // what a killed environment reports
}

/** The fault this call triggers at `when`, if any: counts every match, fires on the Nth. */
function faultAt(when, operation, body) {
  for (const fault of armedFaults) {
    if (fault.when !== when) continue;
    if (fault.operations && !fault.operations.includes(operation)) continue;
    if (fault.contains !== undefined && !body.includes(fault.contains)) continue;
    fault.seen = (fault.seen ?? 0) + 1;
    if (fault.seen === fault.nth) return fault;
  }
  return undefined;
}

function installFaultHooks() {
  const original = http.request;
  http.request = function request(...args) {
    const callbackAt = args.findIndex((a) => typeof a === 'function');
    const options = args.find((a) => a && typeof a === 'object' && !(a instanceof URL)) ?? {};
    const target = Object.entries(options.headers ?? {}).find(([k]) => k.toLowerCase() === 'x-amz-target')?.[1];
    const operation = typeof target === 'string' ? target.slice(target.lastIndexOf('.') + 1) : undefined;
    let after;
    if (callbackAt >= 0) {
      const callback = args[callbackAt];
      args[callbackAt] = (res) => (after ? die(after) : callback(res));
    }
    const req = original.apply(this, args);
    const chunks = [];
    const write = req.write;
    const end = req.end;
    req.write = function (chunk, ...rest) {
      if (chunk != null && typeof chunk !== 'function') chunks.push(Buffer.from(chunk));
      return write.call(this, chunk, ...rest);
    };
    req.end = function (chunk, ...rest) {
      if (chunk != null && typeof chunk !== 'function') chunks.push(Buffer.from(chunk));
      const body = Buffer.concat(chunks).toString('utf8');
      const before = faultAt('before', operation, body);
      if (before) die(before);
      after = faultAt('after', operation, body);
      return end.call(this, chunk, ...rest);
    };
    return req;
  };
}

if (faultsEnabled) installFaultHooks();

function serializeError(error) {
  if (error instanceof Error) {
    return {
      errorType: error.name && error.name !== 'Error' ? error.name : error.constructor?.name ?? 'Error',
      errorMessage: error.message,
      trace: (error.stack ?? '').split('\n'),
    };
  }
  return { errorType: typeof error, errorMessage: String(error), trace: [] };
}

function lambdaError(errorType, errorMessage, cause) {
  const error = new Error(errorMessage, { cause });
  error.name = errorType;
  return error;
}

/** Nearest package.json "type" between the file and the task root (Lambda's rule for .js files). */
function packageType(file) {
  let dir = dirname(file);
  const root = resolve(taskRoot);
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        return JSON.parse(readFileSync(pkg, 'utf8')).type ?? 'commonjs';
      } catch {
        return 'commonjs';
      }
    }
    if (dir === root || dir === dirname(dir)) return 'commonjs';
    dir = dirname(dir);
  }
}

/**
 * CommonJS without require(): the asset lives under the repository, whose package.json says
 * "type": "module", but in Lambda (/var/task, no package.json) a .js bundle is CommonJS.
 */
function loadCommonJs(file) {
  const mod = new Module(file, null);
  mod.filename = file;
  mod.paths = [...Module._nodeModulePaths(dirname(file)), ...extraNodePaths];
  Module._cache[file] = mod;
  mod._compile(readFileSync(file, 'utf8'), file);
  mod.loaded = true;
  return mod.exports;
}

async function loadHandler() {
  const dot = handlerSetting.lastIndexOf('.');
  if (dot <= 0) throw lambdaError('Runtime.MalformedHandlerName', `Bad handler ${handlerSetting}: expected <file>.<export>`);
  const modulePath = resolve(taskRoot, handlerSetting.slice(0, dot));
  const exportPath = handlerSetting.slice(dot + 1).split('.');
  let moduleExports;
  if (existsSync(`${modulePath}.mjs`)) {
    moduleExports = await import(pathToFileURL(`${modulePath}.mjs`).href);
  } else if (existsSync(`${modulePath}.cjs`)) {
    moduleExports = loadCommonJs(`${modulePath}.cjs`);
  } else if (existsSync(`${modulePath}.js`)) {
    const file = `${modulePath}.js`;
    moduleExports = packageType(file) === 'module' ? await import(pathToFileURL(file).href) : loadCommonJs(file);
  } else {
    throw lambdaError('Runtime.ImportModuleError', `Error: Cannot find module '${handlerSetting.slice(0, dot)}' in ${taskRoot}`);
  }
  let fn = moduleExports;
  for (const part of exportPath) fn = fn?.[part];
  if (typeof fn !== 'function') {
    throw lambdaError('Runtime.HandlerNotFound', `${handlerSetting} is undefined or not exported`);
  }
  return fn;
}

function buildContext(c, settle) {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: c.functionName,
    functionVersion: c.functionVersion,
    invokedFunctionArn: c.invokedFunctionArn,
    memoryLimitInMB: c.memoryLimitInMB,
    awsRequestId: c.awsRequestId,
    logGroupName: c.logGroupName,
    logStreamName: c.logStreamName,
    identity: undefined,
    clientContext: undefined,
    getRemainingTimeInMillis: () => Math.max(0, c.deadlineMs - Date.now()),
    // Legacy completion methods, still honoured by the Node runtime.
    done: (error, result) => settle(error, result),
    succeed: (result) => settle(null, result),
    fail: (error) => settle(error ?? new Error('handled')),
  };
}

function run(handler, event, c) {
  return new Promise((resolvePromise, reject) => {
    let settled = false;
    const settle = (error, result) => {
      if (settled) return;
      settled = true;
      if (error !== null && error !== undefined) reject(error);
      else resolvePromise(result);
    };
    const context = buildContext(c, settle);
    const callback = (error, result) => settle(error, result);
    try {
      const out = handler(event, context, callback);
      if (out && typeof out.then === 'function') out.then((r) => settle(null, r), (e) => settle(e));
      else if (handler.length < 3) settle(null, out);
    } catch (error) {
      settle(error);
    }
  });
}

process.on('uncaughtException', (error) => {
  parentPort.postMessage({ type: 'fatal', error: { ...serializeError(error), errorType: 'Runtime.UncaughtException' } });
  process.exit(129);
});
process.on('unhandledRejection', (reason) => {
  parentPort.postMessage({ type: 'fatal', error: { ...serializeError(reason), errorType: 'Runtime.UnhandledPromiseRejection' } });
  process.exit(128);
});

const initStarted = performance.now();
let handler;
try {
  handler = await loadHandler();
  parentPort.postMessage({ type: 'ready', initMs: performance.now() - initStarted });
} catch (error) {
  const e = serializeError(error);
  if (!e.errorType.startsWith('Runtime.')) {
    e.errorMessage = `${e.errorType}: ${e.errorMessage}`;
    e.errorType = 'Runtime.ImportModuleError';
  }
  parentPort.postMessage({ type: 'init-error', error: e });
}

parentPort.on('message', async (message) => {
  if (message.type !== 'invoke' || !handler) return;
  process.env._X_AMZN_TRACE_ID = message.context.traceId;
  armedFaults = message.faults ?? [];
  try {
    const result = await run(handler, JSON.parse(message.event), message.context);
    let payload;
    try {
      payload = JSON.stringify(result === undefined ? null : result);
    } catch (error) {
      throw lambdaError('Runtime.MarshalError', `Unable to stringify response body: ${error.message}`);
    }
    parentPort.postMessage({ type: 'result', id: message.id, ok: true, payload });
  } catch (error) {
    parentPort.postMessage({ type: 'result', id: message.id, ok: false, error: serializeError(error) });
  }
});
