/**
 * A pair of connected pseudo-terminals made by socat, standing in for a serial cable: what is written
 * to one end is read from the other. Killing socat makes both device nodes disappear, as unplugging a
 * USB serial adapter does; starting it again brings them back under the same link paths.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

export interface PtyPair {
  /** One end's link path (give it to the gateway). */
  a: string;
  /** The other end's link path (give it to the simulated device). */
  b: string;
  /** Kills socat and waits for it to exit; both links are gone afterwards. */
  unplug(): Promise<void>;
  /** Starts socat again on the same link paths and waits until it relays. */
  replug(): Promise<void>;
  /** Kills socat if it runs. Safe to call twice. */
  close(): Promise<void>;
}

/** Creates `<dir>/dev-a` and `<dir>/dev-b` and waits until socat relays between them. */
export async function openPtyPair(dir: string): Promise<PtyPair> {
  const a = join(dir, 'dev-a');
  const b = join(dir, 'dev-b');
  let socat: ChildProcess | undefined;

  const start = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const child = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: ['ignore', 'ignore', 'pipe'] });
      socat = child;
      let stderr = '';
      const onData = (chunk: Buffer): void => {
        stderr += chunk.toString();
        // socat -d -d reports this once both ptys and their links exist.
        if (stderr.includes('starting data transfer loop')) {
          child.stderr?.off('data', onData);
          child.stderr?.resume();
          child.off('exit', onExit);
          resolve();
        }
      };
      const onExit = (code: number | null): void => reject(new Error(`socat exited with ${code} before relaying:\n${stderr}`));
      child.once('error', (error) =>
        reject(new Error(`cannot run socat (${error.message}); install it with apt-get install socat or npm run setup`)),
      );
      child.once('exit', onExit);
      child.stderr?.on('data', onData);
    });

  const stop = async (): Promise<void> => {
    const child = socat;
    socat = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await exited;
    // socat removes its links on SIGTERM; this covers a socat that could not.
    rmSync(a, { force: true });
    rmSync(b, { force: true });
  };

  await start();
  return {
    a,
    b,
    unplug: stop,
    async replug() {
      if (socat) throw new Error('replug: socat is still running; unplug first');
      await start();
    },
    close: stop,
  };
}
