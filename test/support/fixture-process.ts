import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';

export interface Message {
  type: string;
  [key: string]: unknown;
}

/** A child process speaking the fixtures' IPC protocol. */
export function spawnFixture(file: string, args: string[]) {
  const child: ChildProcess = fork(join(import.meta.dirname, 'fixtures', file), args, {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = (type: string) =>
    new Promise<Message>((resolve, reject) => {
      const onMessage = (message: Message) => {
        if (message.type !== type) return;
        child.off('message', onMessage);
        resolve(message);
      };
      child.on('message', onMessage);
      child.once('exit', (code) => reject(new Error(`${file} exited with ${code} before ${type}`)));
    });
  return { child, next, send: (message: object) => child.send(message) };
}
