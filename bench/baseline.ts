/**
 * Builds the package as it was at a git commit, to measure it in the same process as today's:
 * a detached worktree in the system's temporary directory, sharing this checkout's
 * `node_modules`, built with its own tsup config. Built once per commit, then reused.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = resolve(import.meta.dirname, '..');
const git = (...args: string[]): string =>
  execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim();

/** The commit's `EventCoalescer`, with the short hash that names it in the tables. */
export async function loadBaseline(ref: string): Promise<{ name: string; module: unknown }> {
  const sha = git('rev-parse', '--verify', `${ref}^{commit}`);
  const short = sha.slice(0, 7);
  const dir = join(tmpdir(), `event-coalescer-baseline-${short}`);
  const entry = join(dir, 'dist', 'index.js');
  if (!existsSync(entry)) {
    if (!existsSync(dir)) git('worktree', 'add', '--detach', '--force', dir, sha);
    const modules = join(dir, 'node_modules');
    if (!existsSync(modules)) symlinkSync(join(root, 'node_modules'), modules, 'dir');
    execFileSync(join(root, 'node_modules', '.bin', 'tsup'), ['--silent'], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  return { name: `ec@${short}`, module: await import(pathToFileURL(entry).href) };
}
