/**
 * A real Mosquitto broker (Debian's `mosquitto`) on a free loopback port, with its configuration and
 * persistence in a temp folder. It keeps persistent sessions and their queued QoS 1 messages across
 * stop() and start(), like a site broker that restarts, and is never left running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

export interface MosquittoOptions {
  /** Seconds between saves of the persistence file while running; 1 by default. */
  autosaveIntervalS?: number;
  startTimeoutMs?: number;
}

export interface Mosquitto {
  /** mqtt://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** Starts the broker again after stop(), on the same port with the same persisted sessions. */
  start(): Promise<void>;
  /** Stops the broker cleanly (it saves its sessions on SIGTERM); SIGKILL after a grace period. */
  stop(): Promise<void>;
  /** Stops the broker and removes its folder. Safe to call twice. */
  close(): Promise<void>;
}

const running = new Set<ChildProcess>();
// A test run that dies must not leave brokers holding ports.
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

function tryConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  const dataDir = mkdtempSync(join(tmpdir(), 'reefer-mosquitto-'));
  const port = await freePort();
  const configPath = join(dataDir, 'mosquitto.conf');
  const logPath = join(dataDir, 'mosquitto.log');
  writeFileSync(
    configPath,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      // The default (1000) drops messages the broker already acknowledged once a subscriber lags.
      'max_queued_messages 0',
      'persistence true',
      `persistence_location ${join(dataDir, 'persistence')}/`,
      `autosave_interval ${options.autosaveIntervalS ?? 1}`,
      // Run as root, mosquitto would switch to the `mosquitto` user, who cannot write the temp folder.
      `user ${userInfo().username}`,
      `log_dest file ${logPath}`,
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      'connection_messages true',
      '',
    ].join('\n'),
  );
  mkdirSync(join(dataDir, 'persistence'));

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let closed: Promise<void> | undefined;

  const logTail = (): string => {
    try {
      return readFileSync(logPath, 'utf8').split('\n').slice(-20).join('\n');
    } catch {
      return '(no log)';
    }
  };

  async function start(): Promise<void> {
    if (child) return;
    if (closed) throw new Error('mosquitto harness is closed');
    const out = openSync(join(dataDir, 'stdout.log'), 'a');
    const proc = spawn('mosquitto', ['-c', configPath], { stdio: ['ignore', out, out] });
    closeSync(out);
    child = proc;
    running.add(proc);
    // A binary that cannot be spawned reports 'error' and never 'exit'.
    exited = new Promise((resolveExit) => {
      proc.once('exit', () => resolveExit());
      proc.once('error', () => resolveExit());
    });
    let hasExited = false;
    void exited.then(() => {
      hasExited = true;
      running.delete(proc);
      if (child === proc) child = undefined;
    });
    const spawnFailed = new Promise<never>((_, reject) => proc.once('error', reject));
    spawnFailed.catch(() => undefined);
    const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
    const ready = (async () => {
      while (!(await tryConnect(port))) {
        if (hasExited) throw new Error(`mosquitto exited during start:\n${logTail()}`);
        if (Date.now() > deadline) throw new Error(`mosquitto did not accept connections on ${port}:\n${logTail()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      await Promise.race([ready, spawnFailed]);
    } catch (error) {
      await stop();
      throw error;
    }
  }

  async function stop(): Promise<void> {
    const proc = child;
    if (!proc) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  try {
    await start();
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    dataDir,
    start,
    stop,
    close() {
      closed ??= (async () => {
        await stop();
        rmSync(dataDir, { recursive: true, force: true });
      })();
      return closed;
    },
  };
}
