/**
 * Server-Sent Events to many browsers, none of which can grow the server's memory: a client
 * whose unsent bytes pass `maxBufferedBytes` (it reads too slowly, or not at all) is cut off,
 * and a client beyond `maxClients` is turned away. A browser that is cut off reconnects by
 * itself and starts again from a fresh snapshot.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface EventStreamLimits {
  /** Clients served at once; one more is answered 503. */
  maxClients: number;
  /** Bytes a client may leave unread (in Node's buffers and the socket's) before it is cut off. */
  maxBufferedBytes: number;
}

export class EventStream {
  readonly #clients = new Set<ServerResponse>();
  readonly #limits: EventStreamLimits;
  #cutOff = 0;

  constructor(limits: EventStreamLimits) {
    this.#limits = limits;
  }

  /** Clients connected now. */
  get size(): number {
    return this.#clients.size;
  }

  /** Clients cut off so far for reading too slowly. */
  get cutOff(): number {
    return this.#cutOff;
  }

  /** Bytes written to clients and not yet taken by them, all clients together. */
  get bufferedBytes(): number {
    let bytes = 0;
    for (const client of this.#clients) bytes += client.writableLength;
    return bytes;
  }

  /** Opens the stream on `response`; false (and a 503 sent) when the server is full. */
  accept(request: IncomingMessage, response: ServerResponse): boolean {
    if (this.#clients.size >= this.#limits.maxClients) {
      response.writeHead(503, { 'retry-after': '5' }).end();
      return false;
    }
    response.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    // A browser whose connection drops tries again after this long, sending the last id it got.
    response.write('retry: 500\n\n');
    this.#clients.add(response);
    const forget = (): void => {
      this.#clients.delete(response);
    };
    response.on('close', forget);
    // A connection reset while writing: nothing to do but forget the client.
    response.on('error', forget);
    request.on('error', forget);
    return true;
  }

  /**
   * Sends one event to one client, cutting it off if it has fallen too far behind. With an
   * `id`, the browser sends it back as `Last-Event-ID` when it reconnects.
   */
  send(client: ServerResponse, event: string, data: unknown, id?: string): void {
    if (client.writableEnded || client.destroyed) {
      this.#clients.delete(client);
      return;
    }
    const line = id === undefined ? '' : `id: ${id}\n`;
    client.write(`${line}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    if (client.writableLength > this.#limits.maxBufferedBytes) {
      this.#cutOff++;
      this.#clients.delete(client);
      client.destroy();
    }
  }

  broadcast(event: string, data: unknown): void {
    for (const client of this.#clients) this.send(client, event, data);
  }

  /** Cuts every client's connection, as a network that drops them would. */
  dropAll(): void {
    for (const client of this.#clients) client.destroy();
    this.#clients.clear();
  }

  /** Ends every stream: what each client has been sent is still delivered if it reads it. */
  endAll(): void {
    for (const client of this.#clients) client.end();
    this.#clients.clear();
  }
}
