/**
 * The gateway as a separate process, as it runs in the field, so tests can kill it (-9), restart it
 * on the same data folder and port, and see what survived.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

export interface GatewayProcessOptions {
  /** Written as the gateway's YAML config file. */
  config: Record<string, unknown>;
  dir: string;
}

export interface GatewayProcess {
  /** Starts the gateway and resolves once its MQTT broker listens. */
  start(): Promise<void>;
  /** kill -9: no chance to flush or close anything. */
  kill(): Promise<void>;
  /** SIGTERM: a graceful stop; resolves with the exit code. */
  stop(): Promise<number | null>;
  running(): boolean;
  /** Everything the gateway logged, for diagnosing a failed test. */
  logs(): string;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export function createGatewayProcess(options: GatewayProcessOptions): GatewayProcess {
  const configPath = join(options.dir, 'gateway.yaml');
  // Gateways under test run side by side: none may take the default HTTP port.
  writeFileSync(configPath, stringify({ http: { host: '127.0.0.1', port: 0 }, ...options.config }));
  let child: ChildProcess | undefined;
  let exited: Promise<number | null> = Promise.resolve(null);
  let log = '';

  return {
    async start() {
      if (child) throw new Error('gateway already running');
      const proc = spawn(process.execPath, ['--import', 'tsx', 'gateway/cli.ts', '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
      child = proc;
      running.add(proc);
      exited = new Promise((resolve) =>
        proc.once('exit', (code) => {
          running.delete(proc);
          if (child === proc) child = undefined;
          resolve(code);
        }),
      );
      await new Promise<void>((resolve, reject) => {
        let buffered = '';
        proc.stderr!.on('data', (chunk: Buffer) => {
          const text = chunk.toString();
          log += text;
          buffered += text;
          if (buffered.includes('"msg":"gateway started"')) {
            buffered = '';
            resolve();
          }
        });
        void exited.then((code) => reject(new Error(`gateway exited with ${code} before it started:\n${log.slice(-4000)}`)));
      });
    },
    async kill() {
      const proc = child;
      if (!proc) return;
      proc.kill('SIGKILL');
      await exited;
    },
    async stop() {
      const proc = child;
      if (!proc) return null;
      proc.kill('SIGTERM');
      return exited;
    },
    running: () => child !== undefined,
    logs: () => log,
  };
}
