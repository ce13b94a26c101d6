/**
 * `reefer-gateway hash-password`: turns a device's password into the entry the gateway stores, for
 * mqtt.auth.users[].passwordHash or a line of mqtt.auth.usersFile. The password is read from standard
 * input, never from the command line, where `ps` and the shell history would keep it.
 */
import { parseArgs } from 'node:util';
import { CONTAINER_PATTERN, DEFAULT_SCRYPT_PARAMS, hashPassword, USERNAME } from './ingest/mqtt-auth.js';

export const HASH_PASSWORD_USAGE = `Usage: reefer-gateway hash-password [--user NAME [--containers C01,C02]] [--cost LN]

Reads a password from standard input (asked for without echo on a terminal) and prints its scrypt hash,
for mqtt.auth.users[].passwordHash. With --user it prints a line for mqtt.auth.usersFile instead:
NAME:HASH, or NAME:HASH:CONTAINERS.

  --user NAME           the device's user name
  --containers LIST     containers it may publish for, ids or patterns such as C0* (default: NAME)
  --cost LN             scrypt cost, log2 of N, 10-20 (default ${DEFAULT_SCRYPT_PARAMS.logN}: 16 MiB and ~0.1 s per check; each step up doubles both)
  -h, --help            print this help and exit

Example: printf '%s' "$DEVICE_PASSWORD" | reefer-gateway hash-password --user C01 >> devices.txt
`;

export type HashPasswordArgs =
  | { ok: true; help: boolean; user?: string; containers?: string[]; logN: number }
  | { ok: false; message: string };

export function parseHashPasswordArgs(argv: readonly string[]): HashPasswordArgs {
  let values: { user?: string; containers?: string; cost?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { user: { type: 'string' }, containers: { type: 'string' }, cost: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
  if (values.user !== undefined && !USERNAME.test(values.user)) {
    return { ok: false, message: `--user: expected 1-128 characters without spaces or colons, got ${JSON.stringify(values.user)}` };
  }
  if (values.containers !== undefined && values.user === undefined) return { ok: false, message: '--containers: expected --user too' };
  const containers = values.containers?.split(',').map((c) => c.trim());
  if (containers && !containers.every((c) => CONTAINER_PATTERN.test(c))) {
    return { ok: false, message: `--containers: expected comma-separated container ids or patterns without /, + or #, got ${JSON.stringify(values.containers)}` };
  }
  const logN = values.cost === undefined ? DEFAULT_SCRYPT_PARAMS.logN : Number(values.cost);
  if (!Number.isInteger(logN) || logN < 10 || logN > 20) return { ok: false, message: `--cost: expected an integer from 10 to 20, got ${JSON.stringify(values.cost)}` };
  return { ok: true, help: values.help === true, user: values.user, containers, logN };
}

type Input = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(raw: boolean): unknown };

/** One line: typed without echo on a terminal, else the first line of the input. */
function readPassword(input: Input, prompt: NodeJS.WritableStream): Promise<string> {
  if (input.isTTY && input.setRawMode) {
    const tty = input as Input & { setRawMode(raw: boolean): unknown };
    prompt.write('Password: ');
    return new Promise((resolve, reject) => {
      let typed = '';
      tty.setRawMode(true);
      input.setEncoding('utf8');
      input.resume();
      const finish = (error?: Error) => {
        input.off('data', onData);
        tty.setRawMode(false);
        input.pause();
        prompt.write('\n');
        if (error) reject(error);
        else resolve(typed);
      };
      const onData = (chunk: string) => {
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish();
          if (ch === '\u0003') return finish(new Error('interrupted'));
          if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
          else typed += ch;
        }
      };
      input.on('data', onData);
    });
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    input.on('data', (chunk: Buffer | string) => chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)));
    input.once('error', reject);
    input.once('end', () => resolve(Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? ''));
  });
}

/** Runs the command; resolves with the exit code. */
export async function runHashPassword(
  argv: readonly string[],
  io: { stdin: Input; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
): Promise<number> {
  const args = parseHashPasswordArgs(argv);
  if (!args.ok) {
    io.stderr.write(`reefer-gateway hash-password: ${args.message}\n\n${HASH_PASSWORD_USAGE}`);
    return 2;
  }
  if (args.help) {
    io.stdout.write(HASH_PASSWORD_USAGE);
    return 0;
  }
  const password = await readPassword(io.stdin, io.stderr);
  if (password.length === 0) {
    io.stderr.write('reefer-gateway hash-password: expected a password on standard input, got an empty line\n');
    return 2;
  }
  const hash = await hashPassword(password, { ...DEFAULT_SCRYPT_PARAMS, logN: args.logN });
  const line = args.user === undefined ? hash : [args.user, hash, ...(args.containers ? [args.containers.join(',')] : [])].join(':');
  io.stdout.write(`${line}\n`);
  return 0;
}
