/**
 * The operations HTTP server: the only file that imports node:http. It knows nothing of the gateway:
 * it serves GET routes that return a reply, and event streams (Server-Sent Events) that push what a
 * feed sends, and it ends every connection when it closes, so open dashboards do not hold up a stop.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';

export interface HttpReply {
  status: number;
  contentType: string;
  body: string | Buffer;
  headers?: Readonly<Record<string, string>>;
}

export type HttpRoute = () => HttpReply | Promise<HttpReply>;

/** Something that pushes messages to each subscriber until it unsubscribes. */
export interface EventFeed {
  /** `send` is called with one message's data; the returned function unsubscribes. */
  subscribe(send: (data: string) => void): () => void;
}

export interface HttpServerOptions {
  host: string;
  /** 0 lets the OS choose. */
  port: number;
}

export interface HttpServerDeps {
  logger: Logger;
  routes: Readonly<Record<string, HttpRoute>>;
  /** Paths served as text/event-stream. */
  feeds?: Readonly<Record<string, EventFeed>>;
}

export interface HttpServer {
  start(): Promise<void>;
  /** The port bound, once started. */
  port(): number;
  close(): Promise<void>;
}

/** Open event streams at once: each costs a socket and a status read per tick on a small machine. */
const MAX_EVENT_STREAMS = 32;
/** A stream whose client stopped reading is dropped before its backlog grows past this. */
const MAX_STREAM_BACKLOG_BYTES = 1024 * 1024;

const COMMON_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' } as const;

export function createHttpServer(options: HttpServerOptions, deps: HttpServerDeps): HttpServer {
  const log = deps.logger.child({ component: 'http' });
  let server: Server | undefined;
  let boundPort = 0;
  let streams = 0;
  let closing: Promise<void> | undefined;

  function reply(res: ServerResponse, head: boolean, r: HttpReply): void {
    const body = typeof r.body === 'string' ? Buffer.from(r.body) : r.body;
    res.writeHead(r.status, { ...COMMON_HEADERS, 'content-type': r.contentType, 'content-length': String(body.length), ...r.headers });
    res.end(head ? undefined : body);
  }

  function text(status: number, message: string, headers?: Record<string, string>): HttpReply {
    return { status, contentType: 'text/plain; charset=utf-8', body: `${message}\n`, headers };
  }

  function stream(req: IncomingMessage, res: ServerResponse, feed: EventFeed): void {
    if (streams >= MAX_EVENT_STREAMS) {
      reply(res, false, text(503, 'too many open event streams', { 'retry-after': '10' }));
      return;
    }
    streams += 1;
    res.writeHead(200, { ...COMMON_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
    // Tells the browser how soon to reconnect when the gateway restarts.
    res.write('retry: 2000\n\n');
    let ended = false;
    const unsubscribe = feed.subscribe((data) => {
      if (ended) return;
      if (res.writableLength > MAX_STREAM_BACKLOG_BYTES) {
        res.destroy();
        return;
      }
      res.write(`data: ${data.replace(/\n/g, '\ndata: ')}\n\n`);
    });
    // 'close' comes from the event loop, so it cannot have fired before the subscription.
    const end = () => {
      if (ended) return;
      ended = true;
      streams -= 1;
      unsubscribe();
    };
    req.once('close', end);
    res.once('close', end);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      reply(res, false, text(405, 'method not allowed', { allow: 'GET, HEAD' }));
      return;
    }
    const path = new URL(req.url ?? '/', 'http://gateway').pathname;
    const feed = deps.feeds?.[path];
    if (feed && method === 'GET') {
      stream(req, res, feed);
      return;
    }
    const route = Object.hasOwn(deps.routes, path) ? deps.routes[path] : undefined;
    if (!route) {
      reply(res, method === 'HEAD', text(404, 'not found'));
      return;
    }
    try {
      reply(res, method === 'HEAD', await route());
    } catch (error) {
      log.error({ err: error instanceof Error ? error.message : String(error), path }, 'HTTP route failed');
      if (!res.headersSent) reply(res, method === 'HEAD', text(500, 'internal error'));
      else res.destroy();
    }
  }

  return {
    async start() {
      const srv = createServer((req, res) => void handle(req, res));
      server = srv;
      await new Promise<void>((resolve, reject) => {
        const failed = (error: Error) => reject(new Error(`HTTP server cannot listen on ${options.host}:${options.port} (http.host, http.port): ${error.message}`, { cause: error }));
        srv.once('error', failed);
        srv.listen(options.port, options.host, () => {
          srv.off('error', failed);
          resolve();
        });
      });
      srv.on('error', (error) => log.error({ err: error.message }, 'HTTP server error'));
      boundPort = (srv.address() as AddressInfo).port;
      log.info({ host: options.host, port: boundPort }, 'HTTP listening');
    },
    port: () => boundPort,
    close() {
      closing ??= (async () => {
        const srv = server;
        if (!srv?.listening) return;
        await new Promise<void>((resolve) => {
          srv.close(() => resolve());
          // Event streams and idle keep-alive connections would otherwise hold close() open.
          srv.closeAllConnections();
        });
      })();
      return closing;
    },
  };
}
