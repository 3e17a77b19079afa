import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const demo = (...args: string[]) =>
  run('node', ['--import', 'tsx', 'examples/demo.ts', ...args], { timeout: 30_000 });

describe('the demo (npm start)', () => {
  it('runs for --duration, exits 0 and prints a summary', async () => {
    const { stdout } = await demo(
      '--duration',
      '1',
      '--workspaces',
      '5',
      '--rate',
      '200',
      '--window',
      '50',
    );
    expect(stdout).toMatch(/^ws-\d+ .*← event:/m);
    expect(stdout).toMatch(/stopped \(after 1 s\); flushed \d+ pending write\(s\) at shutdown/);
    const eventsIn = Number(stdout.match(/events in: +(\d+)/)?.[1]);
    const writesOut = Number(stdout.match(/writes out: +(\d+)/)?.[1]);
    expect(eventsIn).toBeGreaterThan(0);
    expect(writesOut).toBeGreaterThan(0);
    expect(writesOut).toBeLessThan(eventsIn);
    expect(stdout).toMatch(/latency \(ms\): +p50 \d+ +p99 \d+ +max \d+/);
  }, 30_000);

  it('rejects a bad flag value with one line and exit code 2', async () => {
    const failure = await demo('--rate', 'fast').catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 2 });
    const stderr = (failure as { stderr: string }).stderr.trim();
    expect(stderr.split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/--rate/);
  });

  it('lists its flags with --help', async () => {
    const { stdout } = await demo('--help');
    for (const flag of ['--workspaces', '--rate', '--duration', '--window']) {
      expect(stdout).toContain(flag);
    }
  });
});

describe('the live page from the command line (npm start -- --web)', () => {
  it('prints only its URL on stdout, serves the page there, and stops after --duration', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn(
      'node',
      [
        '--import',
        'tsx',
        'examples/demo.ts',
        '--web',
        '--port',
        '0',
        '--duration',
        '2',
        '--rate',
        '50',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += String(chunk);
    });
    const firstLine = await new Promise<string>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += String(chunk);
        if (output.includes('\n')) resolve(output.split('\n')[0] as string);
      });
    });
    expect(firstLine).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const html = await (await fetch(firstLine)).text();
    expect(html).toContain('<title>event-coalescer — live snapshot</title>');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(output).toBe(`${firstLine}\n`);
    expect(stderr).toMatch(/events in: \d+, writes out: \d+/);
  }, 30_000);
});
