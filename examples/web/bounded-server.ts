/**
 * A node:http server that no client can stop or hold: every request gets an answer (a handler
 * that throws answers 500), a client that is slow to send its request is cut off, and closing
 * ends in bounded time whatever the clients do.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** Time a client has to send its request headers, and its whole request. */
const HEADERS_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** How often Node checks those two deadlines (its default, 30 s, would stretch them). */
const CHECK_INTERVAL_MS = 1_000;
/** How long an idle keep-alive connection stays open. */
const KEEP_ALIVE_TIMEOUT_MS = 5_000;

export type Handler = (request: IncomingMessage, response: ServerResponse) => void;

export function createBoundedServer(handler: Handler): Server {
  const server = createServer(
    {
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: CHECK_INTERVAL_MS,
    },
    (request, response) => {
      try {
        handler(request, response);
      } catch {
        if (!response.headersSent) response.writeHead(500).end();
        else response.destroy();
      }
    },
  );
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  return server;
}

/**
 * The request target split into a path and its query, without `new URL` (which throws on
 * `//`): a path (`/events?x=1`) or an absolute URL (`http://host/events`); anything else
 * (`*`, garbage) is undefined, for a 400.
 */
export function parseTarget(
  target: string | undefined,
): { pathname: string; query: URLSearchParams } | undefined {
  let raw = target ?? '';
  if (!raw.startsWith('/')) {
    const absolute = /^https?:\/\/[^/?#]*/i.exec(raw);
    if (absolute === null) return undefined;
    raw = raw.slice(absolute[0].length);
    if (!raw.startsWith('/')) raw = `/${raw}`;
  }
  const at = raw.indexOf('?');
  return {
    pathname: at === -1 ? raw : raw.slice(0, at),
    query: new URLSearchParams(at === -1 ? '' : raw.slice(at + 1)),
  };
}

/**
 * Stops accepting connections, closes idle ones at once and, after `graceMs`, destroys those
 * still open (a request never finished, a response never read).
 */
export function closeWithin(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    server.closeIdleConnections();
  });
}
