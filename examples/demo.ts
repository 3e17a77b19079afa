/**
 * A simulated host: five domain emitters produce realistic bursts for N workspaces, wired
 * through the collector into a snapshot store. In the terminal, one line per store change and
 * a summary on exit; with --web, the snapshot as a live page.
 *
 *   npm start -- --workspaces 20 --rate 200 --duration 10 --window 150
 *   npm start -- --web
 */
import { web } from './demo-options.js';

if (web) await import('./web/main.js');
else await import('./terminal-demo.js');
