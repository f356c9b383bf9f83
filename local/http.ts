import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Small HTTP helpers shared by the local endpoints. Everything binds to loopback only. */

export const LOOPBACK = '127.0.0.1';

/** A port that was free a moment ago (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface LocalServer {
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

export type LocalHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/**
 * Listens on loopback (port 0 = any free port) and tracks sockets so close() never hangs on keep-alive.
 * A handler that throws or rejects answers 500 and the server keeps serving: an uncaught error in a
 * request callback would end the whole local cloud, so no request may reach one.
 */
export async function listen(handler: LocalHandler, port = 0): Promise<LocalServer> {
  const server = createServer({ keepAliveTimeout: 5000 }, (req, res) => {
    const failed = (error: unknown) => {
      process.stderr.write(`[local] ${req.method} ${req.url}: ${(error as Error)?.stack ?? String(error)}\n`);
      if (!res.headersSent) sendJson(res, 500, { __type: 'InternalFailure', message: 'The local endpoint failed on this request; see its log.' });
      else res.destroy();
    };
    try {
      Promise.resolve(handler(req, res)).catch(failed);
    } catch (error) {
      failed(error);
    }
  });
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') {
        reject(new Error(`Port ${port} on ${LOOPBACK} is already in use. Stop the other process or set PORT to another port (PORT=0 picks a free one).`));
      } else reject(error);
    });
    server.listen(port, LOOPBACK, resolve);
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    server,
    port: actual,
    url: `http://${LOOPBACK}:${actual}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** An AWS JSON-protocol service's error: `type` is its `__type` (and the error's name), `status` the HTTP status. */
export class AwsJsonError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = type;
  }
}

export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`Request body exceeds ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/** Reads the whole body, failing fast (without buffering the rest) once it passes `limit` bytes. */
export function readBody(req: IncomingMessage, limit = Number.POSITIVE_INFINITY): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      reject(new BodyTooLargeError(limit));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

/** A record keyed by request data (header, query or form names): no prototype, so `__proto__` or `constructor` are plain keys. */
export function requestRecord<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

export function sendJson(res: import('node:http').ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** One more call of `operation` by `caller` (two map lookups: cheap enough to run on every request). */
export function countCall(counts: Map<string, Map<string, number>>, caller: string, operation: string): void {
  let ops = counts.get(caller);
  if (!ops) counts.set(caller, (ops = new Map()));
  ops.set(operation, (ops.get(operation) ?? 0) + 1);
}
