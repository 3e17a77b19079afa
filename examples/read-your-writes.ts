/**
 * Read-your-writes and "saved" answers over node:http, for a host whose mutation endpoints
 * enqueue through the coalescer:
 *
 *   GET   /workspaces/:id   the store's entry with what is accepted but not yet written on top
 *   PATCH /workspaces/:id   merges the JSON body and answers 200 once it is in the store
 *
 *   const server = createServer(workspaceRoutes(collector, store));
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventCollector, Fields, SnapshotEntry } from 'event-coalescer';

/** What the routes read: a store that hands out entries (the memory and Redis stores do). */
export interface EntryReader {
  getByWorkspaceId(
    workspaceId: string,
  ): SnapshotEntry | undefined | Promise<SnapshotEntry | undefined>;
}

export function workspaceRoutes(
  collector: EventCollector<Fields>,
  store: EntryReader,
): (request: IncomingMessage, response: ServerResponse) => void {
  const answer = (response: ServerResponse, status: number, body?: unknown): void => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(body === undefined ? undefined : JSON.stringify(body));
  };
  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const match = /^\/workspaces\/([^/?]+)$/.exec(request.url ?? '');
    if (match === null) return answer(response, 404);
    const workspaceId = decodeURIComponent(match[1] as string);
    if (request.method === 'GET') {
      const entry = await store.getByWorkspaceId(workspaceId);
      const accepted = collector.peek(workspaceId);
      if (entry === undefined && accepted === undefined) return answer(response, 404);
      // The store's fields, then what this replica accepted and has not written yet.
      return answer(response, 200, { ...entry?.fields, ...accepted });
    }
    if (request.method === 'PATCH') {
      let body = '';
      for await (const chunk of request) body += chunk;
      collector.coalescer.enqueue(workspaceId, JSON.parse(body) as Fields, 'api:patch');
      // "Saved" once the snapshot holds it: the burst still coalesces into one write.
      const outcome = await collector.settled(workspaceId);
      return answer(response, outcome === 'landed' ? 200 : 404, { outcome });
    }
    response.setHeader('allow', 'GET, PATCH');
    return answer(response, 405);
  };
  return (request, response) => {
    handle(request, response).catch((error: unknown) => {
      // A write given up (already reported to onError), or a body that is not JSON.
      if (!response.headersSent) answer(response, 503, { error: String(error) });
    });
  };
}
