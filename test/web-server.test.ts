/**
 * The live page's server as an attacker and a bad network see it, run as users run it (a
 * process started from the command line): malformed targets, methods it does not serve,
 * requests never finished, many Server-Sent Events clients, one that never reads, and
 * shutdown with all of them connected.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

interface Served {
  child: ChildProcess;
  url: string;
  port: number;
  stderr: () => string;
  exited: Promise<number | null>;
}

async function serve(...args: string[]): Promise<Served> {
  const child = spawn(
    'node',
    ['--import', 'tsx', 'examples/demo.ts', '--web', '--port', '0', '--rate', '20', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += String(chunk);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  let stdout = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += String(chunk);
      if (stdout.includes('\n')) resolve(stdout.split('\n')[0] as string);
    });
    void exited.then(() => reject(new Error(`the server exited: ${stderr}`)));
  });
  return { child, url, port: Number(new URL(url).port), stderr: () => stderr, exited };
}

/** Sends raw bytes and collects the answer until the server closes the connection. */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    let answer = '';
    socket.on('data', (chunk) => {
      answer += String(chunk);
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
  });
}

const statusOf = (answer: string): number => Number(answer.split(' ')[1]);

/**
 * A connection that sent `bytes` and will never send more; `reads: false` never reads either
 * (its close then goes unseen here: the server's counters tell).
 */
function stuck(
  port: number,
  bytes: string,
  { reads = true } = {},
): Promise<{ socket: Socket; closed: Promise<void> }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(bytes);
      if (reads) socket.resume();
      else socket.pause();
      resolve({ socket, closed: new Promise((done) => socket.on('close', () => done())) });
    });
    socket.on('error', () => {});
  });
}

/** A live page that reads everything: the events it has seen, and whether its stream ended. */
async function reader(url: string) {
  const controller = new AbortController();
  const response = await fetch(`${url}events`, { signal: controller.signal });
  const state = { text: '', ended: false };
  const done = (async () => {
    const decoder = new TextDecoder();
    const body = (response.body as ReadableStream<Uint8Array>).getReader();
    try {
      for (let chunk = await body.read(); !chunk.done; chunk = await body.read()) {
        state.text += decoder.decode(chunk.value);
      }
      state.ended = true;
    } catch {
      // aborted by the test
    }
  })();
  return { state, done, abort: () => controller.abort() };
}

async function stats(url: string) {
  return (await (await fetch(`${url}stats`)).json()) as {
    clients: number;
    clientsCutOff: number;
    bufferedBytes: number;
  };
}

describe('the live page server (npm start -- --web)', () => {
  let server: Served;
  beforeAll(async () => {
    server = await serve('--duration', '0');
  }, 30_000);
  afterAll(async () => {
    server.child.kill('SIGTERM');
    await server.exited;
  });

  it('answers malformed targets with 400 or 404 and keeps serving', async () => {
    const targets = ['//', '//@', '//[::1', '*', 'garbage', '/../../etc/passwd', '/%2e%2e/x'];
    for (const target of targets) {
      const answer = await raw(
        server.port,
        `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      expect([400, 404], `${target}: ${answer.split('\r\n')[0]}`).toContain(statusOf(answer));
      expect(answer).not.toContain('root:');
    }
    const absolute = await raw(
      server.port,
      `GET http://x/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    expect(statusOf(absolute)).toBe(200);
    expect((await fetch(server.url)).status).toBe(200);
  });

  it('answers a method it does not serve with 405 and the ones it does', async () => {
    const deleted = await fetch(server.url, { method: 'DELETE' });
    expect(deleted.status).toBe(405);
    expect(deleted.headers.get('allow')).toBe('GET');
    const burst = await fetch(`${server.url}burst`);
    expect(burst.status).toBe(405);
    expect(burst.headers.get('allow')).toBe('POST');
    expect((await fetch(`${server.url}nothing-here`)).status).toBe(404);
  });

  it('cuts off a client that never finishes its request headers', async () => {
    const started = performance.now();
    const { closed } = await stuck(server.port, 'GET / HTTP/1.1\r\nHost: x\r\n');
    await closed;
    // Node's headers timeout (5 s here), checked every second.
    expect(performance.now() - started).toBeLessThan(9_000);
    expect((await fetch(server.url)).status).toBe(200);
  }, 15_000);

  it('serves many live pages and cuts off one that never reads, so memory stays bounded', async () => {
    const pages = await Promise.all(Array.from({ length: 50 }, () => reader(server.url)));
    const neverReads = await stuck(server.port, 'GET /events HTTP/1.1\r\nHost: x\r\n\r\n', {
      reads: false,
    });
    // The server registers the raw connection once it has read its request.
    for (let i = 0; i < 100 && (await stats(server.url)).clients < 51; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect((await stats(server.url)).clients).toBe(51);
    // Coalescing off: every event becomes a change sent to every page.
    await fetch(`${server.url}coalescing?on=false`, { method: 'POST' });
    let peak = 0;
    for (let round = 0; round < 400 && (await stats(server.url)).clientsCutOff === 0; round++) {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          fetch(`${server.url}burst?workspace=ws-00${i}&events=100`, { method: 'POST' }),
        ),
      );
      peak = Math.max(peak, (await stats(server.url)).bufferedBytes);
    }
    await fetch(`${server.url}coalescing?on=true`, { method: 'POST' });
    const after = await stats(server.url);
    expect(after.clientsCutOff).toBe(1);
    expect(after.clients).toBe(50);
    // What the server holds for its clients stays near one client's limit (1 MiB).
    expect(peak).toBeLessThan(2 * 2 ** 20);
    neverReads.socket.destroy();
    for (const page of pages) {
      expect(page.state.text).toContain('event: change');
      page.abort();
    }
    await Promise.all(pages.map((page) => page.done));
  }, 60_000);

  it('turns away a live page beyond its limit with 503', async () => {
    const pages = await Promise.all(Array.from({ length: 200 }, () => reader(server.url)));
    const refused = await fetch(`${server.url}events`);
    expect(refused.status).toBe(503);
    for (const page of pages) page.abort();
    await Promise.all(pages.map((page) => page.done));
  }, 30_000);
});

describe('the live page server at shutdown', () => {
  it('sends the final updates, then ends in bounded time with exit code 0, whatever the clients do', async () => {
    const server = await serve('--duration', '3');
    const pages = await Promise.all(Array.from({ length: 20 }, () => reader(server.url)));
    await stuck(server.port, 'GET / HTTP/1.1\r\nHost: x\r\n');
    await stuck(server.port, 'POST /burst HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n');
    const neverReads = await stuck(server.port, 'GET /events HTTP/1.1\r\nHost: x\r\n\r\n', {
      reads: false,
    });
    const started = performance.now();
    const code = await server.exited;
    expect(code).toBe(0);
    // --duration 3, then at most the 2 s grace for connections that do not close.
    expect(performance.now() - started).toBeLessThan(3_000 + 2_000 + 2_000);
    neverReads.socket.destroy();
    await Promise.all(pages.map((page) => page.done));
    for (const page of pages) {
      expect(page.state.ended).toBe(true);
      expect(page.state.text).toContain('event: stats');
    }
    expect(server.stderr()).toMatch(/events in: \d+, writes out: \d+/);
    expect(server.stderr()).not.toMatch(/Error|write after end/);
  }, 30_000);
});
