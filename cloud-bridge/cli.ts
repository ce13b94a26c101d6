#!/usr/bin/env node
/**
 * `reefer-bridge`: the cloud side's services, one subcommand each (the MQTT uplink bridge, the
 * analytics and the actions consumers). Each subcommand parses its own flags and prints its own help.
 */
import { actionsSubcommand } from './actions-subcommand.js';
import { analyticsSubcommand } from './analytics-subcommand.js';
import { serveSubcommand } from './bridge-serve.js';
import { commandSubcommand } from './command-subcommand.js';
import { isEntryPoint } from './entry-point.js';
import type { BridgeSubcommand, SubcommandIo } from './subcommand.js';

export const SUBCOMMANDS: Readonly<Record<string, BridgeSubcommand>> = {
  serve: serveSubcommand,
  analytics: analyticsSubcommand,
  actions: actionsSubcommand,
  command: commandSubcommand,
};

export function bridgeUsage(): string {
  const width = Math.max(10, ...Object.keys(SUBCOMMANDS).map((name) => name.length + 2));
  return `Usage: reefer-bridge <command> [flags]   (reefer-bridge <command> --help for its flags)

The cloud side of reefer-edge: services between the Kafka backbone and the gateways.

Commands:
${Object.entries(SUBCOMMANDS)
  .map(([name, sub]) => `  ${name.padEnd(width)}${sub.summary}`)
  .join('\n')}
`;
}

/** An error and its causes as one line, each message once (kafkajs wraps the cause's message). */
export function errorChain(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth += 1) {
    const text = e instanceof Error ? e.message : String(e);
    if (text !== '' && !parts.some((p) => p.includes(text))) parts.push(text);
  }
  return parts.join(': ') || String(error);
}

export async function runBridgeCli(argv: readonly string[], io: SubcommandIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout).write(bridgeUsage());
    return name === undefined ? 2 : 0;
  }
  const sub = SUBCOMMANDS[name];
  if (!sub) {
    io.stderr.write(`reefer-bridge: unknown command "${name}"\n\n${bridgeUsage()}`);
    return 2;
  }
  return sub.run(rest, io);
}

if (isEntryPoint(import.meta.url)) {
  const stopRequested = new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  runBridgeCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, stopRequested }).then(
    (code) => process.exit(code),
    (error: unknown) => {
      // One line an operator can act on (Kafka unreachable, a file missing); the stack with REEFER_DEBUG=1.
      const detail = process.env.REEFER_DEBUG === '1' && error instanceof Error ? `\n${error.stack ?? ''}` : '';
      process.stderr.write(`reefer-bridge: ${errorChain(error)}${detail}\n`);
      process.exit(1);
    },
  );
}
