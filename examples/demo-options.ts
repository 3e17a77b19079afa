/** The demo's command-line flags, parsed and checked once: `npm start -- --help`. */
import { parseArgs } from 'node:util';

const usage = `Usage: npx event-coalescer [options]   (in a clone: npm start -- [options])

  --workspaces N   simulated workspaces (default 20)
  --rate N         domain events per second, all workspaces together (default 200)
  --duration S     seconds to run; 0 runs until Ctrl-C (default 10)
  --window MS      coalescing window in milliseconds (default 150)
  --redis URL      keep the snapshot in Redis (redis://127.0.0.1:PORT) instead of memory
  --redis-cluster NODES
                   keep it in a Redis Cluster: host:port of some nodes, comma-separated
  --postgres URL   keep it in PostgreSQL (postgres://user@127.0.0.1:PORT/db), tables made if
                   missing; with --web too
  --quiet          print only the summary
  --web            serve the snapshot as a live page instead (http://127.0.0.1:3000/)
  --port N         the page's port (default 3000; 0 picks a free one)
  --host H         the address it listens on (default 127.0.0.1: this machine only)
  --help           show this help`;

export function fail(message: string): never {
  process.stderr.write(`demo: ${message} (see --help)\n`);
  process.exit(2);
}

function numberFlag(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < min) {
    fail(`--${name} expects a number from ${min} and up, got "${raw}"`);
  }
  return value;
}

export let flags: ReturnType<typeof parseFlags>;
function parseFlags() {
  return parseArgs({
    options: {
      workspaces: { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      window: { type: 'string' },
      redis: { type: 'string' },
      'redis-cluster': { type: 'string' },
      postgres: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      web: { type: 'boolean', default: false },
      port: { type: 'string' },
      host: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  }).values;
}
try {
  flags = parseFlags();
} catch (error) {
  fail((error as Error).message.split('\n')[0] ?? 'bad arguments');
}
if (flags.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
export const workspaceCount = Math.floor(numberFlag('workspaces', flags.workspaces, 20, 1));
export const rate = numberFlag('rate', flags.rate, 200, 1);
export const durationS = numberFlag('duration', flags.duration, 10, 0);
export const windowMs = numberFlag('window', flags.window, 150, 0);
export const quiet = flags.quiet === true;
export const redisUrl = flags.redis;
if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
  fail(`--redis expects a URL like redis://127.0.0.1:6380, got "${redisUrl}"`);
}
export const clusterNodes = flags['redis-cluster']?.split(',').map((node) => {
  const match = /^([^:]+):(\d+)$/.exec(node.trim());
  if (match === null) fail(`--redis-cluster expects host:port,host:port…, got "${node}"`);
  return { host: match[1] as string, port: Number(match[2]) };
});
export const postgresUrl = flags.postgres;
if (postgresUrl !== undefined && !/^postgres(ql)?:\/\//.test(postgresUrl)) {
  fail(`--postgres expects a URL like postgres://user@127.0.0.1:5433/db, got "${postgresUrl}"`);
}
if ([redisUrl, clusterNodes, postgresUrl].filter((store) => store !== undefined).length > 1) {
  fail('--redis, --redis-cluster and --postgres: choose one');
}

export const web = flags.web === true;
export const port = Math.floor(numberFlag('port', flags.port, 3000, 0));
export const host = flags.host ?? '127.0.0.1';
