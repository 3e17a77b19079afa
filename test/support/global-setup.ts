import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** The examples and the package tests import the built package, as users do: build it once. */
export default function setup(): void {
  if (process.env.EVENT_COALESCER_SKIP_BUILD === '1' && existsSync('dist/index.js')) return;
  execFileSync('npm', ['run', '--silent', 'build', '--', '--silent'], { stdio: 'inherit' });
}
