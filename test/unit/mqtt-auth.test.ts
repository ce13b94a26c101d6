import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseHashPasswordArgs, runHashPassword } from '../../gateway/hash-password.js';
import {
  createMqttAuthenticator,
  hashPassword,
  mayPublish,
  maySubscribe,
  parseCredentialsFile,
  parsePasswordHash,
  verifyPassword,
  type MqttIdentity,
  type PasswordHash,
} from '../../gateway/ingest/mqtt-auth.js';

/** The cheapest cost the parser accepts, to keep the tests fast. */
const FAST = { logN: 10, r: 8, p: 1 };
const parsed = (text: string): PasswordHash => (parsePasswordHash(text) as { ok: true; hash: PasswordHash }).hash;

describe('password hashes', () => {
  it('verifies the password it was made from and nothing else, with a fresh salt each time', async () => {
    const a = await hashPassword('s3cret', FAST);
    const b = await hashPassword('s3cret', FAST);
    expect(a).toMatch(/^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword('s3cret', parsed(a))).toBe(true);
    expect(await verifyPassword(Buffer.from('s3cret'), parsed(b))).toBe(true);
    expect(await verifyPassword('s3cret ', parsed(a))).toBe(false);
    expect(await verifyPassword('', parsed(a))).toBe(false);
  });

  it('refuses malformed entries and costs that would let one check take too much memory or time', () => {
    const salt = 'A'.repeat(22);
    const key = 'B'.repeat(43);
    expect(parsePasswordHash(`$scrypt$ln=14,r=8,p=1$${salt}$${key}`).ok).toBe(true);
    expect(parsePasswordHash('s3cret').ok).toBe(false);
    expect(parsePasswordHash(`$argon2id$v=19$m=65536,t=3,p=4$${salt}$${key}`).ok).toBe(false);
    expect(parsePasswordHash(`$scrypt$ln=9,r=8,p=1$${salt}$${key}`)).toEqual({ ok: false, problem: 'expected ln 10-20, r 1-32 and p 1-16' });
    expect(parsePasswordHash(`$scrypt$ln=20,r=32,p=1$${salt}$${key}`)).toEqual({ ok: false, problem: 'expected parameters needing at most 256 MiB' });
    expect(parsePasswordHash(`$scrypt$ln=14,r=8,p=1$${salt}$short`).ok).toBe(false);
  });
});

describe('credentials file', () => {
  it('reads one user per line, skipping comments and blank lines; containers default to the user name', async () => {
    const hash = await hashPassword('pw', FAST);
    const { users, problems } = parseCredentialsFile(`# ship 7\n\nC01:${hash}\nfleet-a:${hash}:C1*, D02\r\n`);
    expect(problems).toEqual([]);
    expect(users).toEqual([
      { username: 'C01', passwordHash: hash },
      { username: 'fleet-a', passwordHash: hash, containers: ['C1*', 'D02'] },
    ]);
  });

  it('names the line of each problem without ever quoting a hash', async () => {
    const hash = await hashPassword('pw', FAST);
    const { problems } = parseCredentialsFile(`C01:${hash}\nC02:not-a-hash\nC03:${hash}:reefer/#\nC04\nC05:${hash}:C05:extra`);
    expect(problems).toEqual([
      'line 2 (C02): password hash expected $scrypt$ln=<n>,r=<r>,p=<p>$<salt>$<key>',
      'line 3 (C03): expected comma-separated container ids or patterns',
      'line 4 (C04): password hash expected $scrypt$ln=<n>,r=<r>,p=<p>$<salt>$<key>',
      'line 5: expected username:passwordHash[:containers]',
    ]);
    for (const problem of problems) expect(problem).not.toContain(hash.slice(20));
  });
});

describe('topic ACL', () => {
  const device: MqttIdentity = { kind: 'user', username: 'C01', mayUse: (id) => id === 'C01' };

  it("lets a device publish under its own container's topics only", () => {
    expect(mayPublish(device, 'reefer/C01/telemetry')).toBe(true);
    expect(mayPublish(device, 'reefer/C01/events/door')).toBe(true);
    expect(mayPublish(device, 'reefer/C02/telemetry')).toBe(false);
    expect(mayPublish(device, 'reefer/C01')).toBe(false);
    expect(mayPublish(device, 'other/C01/telemetry')).toBe(false);
    expect(mayPublish(device, '$SYS/broker/x')).toBe(false);
  });

  it("lets a device subscribe to its own container's commands only, never through a wildcard", () => {
    expect(maySubscribe(device, 'reefer/C01/commands')).toBe(true);
    expect(maySubscribe(device, 'reefer/C01/commands/#')).toBe(true);
    expect(maySubscribe(device, 'reefer/C02/commands')).toBe(false);
    expect(maySubscribe(device, 'reefer/+/commands')).toBe(false);
    expect(maySubscribe(device, 'reefer/#')).toBe(false);
    expect(maySubscribe(device, 'reefer/C01/telemetry')).toBe(false);
    expect(maySubscribe(device, '#')).toBe(false);
  });

  it('puts no limits on anonymous clients, which only a closed network should allow', () => {
    expect(mayPublish({ kind: 'anonymous' }, 'anything/at/all')).toBe(true);
    expect(maySubscribe({ kind: 'anonymous' }, '#')).toBe(true);
  });
});

describe('authenticator', () => {
  async function authenticator(allowAnonymous = false) {
    const users = [
      { username: 'C01', passwordHash: await hashPassword('pw-c01', FAST) },
      { username: 'fleet', passwordHash: await hashPassword('pw-fleet', FAST), containers: ['C1*', 'D02'] },
    ];
    return createMqttAuthenticator({ allowAnonymous, users });
  }
  const pw = (text: string) => Buffer.from(text);

  it('accepts a known user with the right password, limited to its containers (its user name by default)', async () => {
    const auth = await authenticator();
    const c01 = await auth.authenticate('C01', pw('pw-c01'));
    expect(c01.ok && c01.identity.kind === 'user' && [c01.identity.mayUse('C01'), c01.identity.mayUse('C02')]).toEqual([true, false]);
    const fleet = await auth.authenticate('fleet', pw('pw-fleet'));
    const identity = fleet.ok ? fleet.identity : undefined;
    expect(identity?.kind === 'user' && ['C10', 'C1', 'D02', 'D020', 'C01'].map((id) => identity.mayUse(id))).toEqual([
      true,
      true,
      true,
      false,
      false,
    ]);
  });

  it('refuses a wrong password, an unknown user and a missing user name, each with its reason and CONNACK code', async () => {
    const auth = await authenticator();
    expect(await auth.authenticate('C01', pw('wrong'))).toEqual({ ok: false, reason: 'bad-password', returnCode: 4 });
    expect(await auth.authenticate('C01', undefined)).toEqual({ ok: false, reason: 'bad-password', returnCode: 4 });
    expect(await auth.authenticate('nobody', pw('pw-c01'))).toEqual({ ok: false, reason: 'unknown-user', returnCode: 4 });
    expect(await auth.authenticate(undefined, undefined)).toEqual({ ok: false, reason: 'no-credentials', returnCode: 5 });
  });

  it('still refuses a wrong password after the right one was cached', async () => {
    const auth = await authenticator();
    expect((await auth.authenticate('C01', pw('pw-c01'))).ok).toBe(true);
    expect((await auth.authenticate('C01', pw('pw-c01'))).ok).toBe(true);
    expect(await auth.authenticate('C01', pw('pw-c01x'))).toMatchObject({ ok: false, reason: 'bad-password' });
    expect(await auth.authenticate('fleet', pw('pw-c01'))).toMatchObject({ ok: false, reason: 'bad-password' });
  });

  it('with anonymous access on, lets clients without a user name in but still checks those that give one', async () => {
    const auth = await authenticator(true);
    expect(await auth.authenticate(undefined, undefined)).toEqual({ ok: true, identity: { kind: 'anonymous' } });
    expect(await auth.authenticate('C01', pw('wrong'))).toMatchObject({ ok: false, reason: 'bad-password' });
  });

  it('refuses a configuration that lists a user twice', async () => {
    const passwordHash = await hashPassword('pw', FAST);
    expect(() => createMqttAuthenticator({ allowAnonymous: false, users: [{ username: 'a', passwordHash }, { username: 'a', passwordHash }] })).toThrow(
      'MQTT user "a" is listed twice',
    );
  });
});

describe('reefer-gateway hash-password', () => {
  async function run(args: string[], input: string) {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (d: Buffer) => (out += d.toString()));
    stderr.on('data', (d: Buffer) => (err += d.toString()));
    stdin.end(input);
    const code = await runHashPassword(args, { stdin, stdout, stderr });
    return { code, out, err };
  }

  it('prints a hash of the first line of standard input that verifies against it', async () => {
    const { code, out } = await run(['--cost', '10'], 'device password\nignored\n');
    expect(code).toBe(0);
    expect(await verifyPassword('device password', parsed(out.trim()))).toBe(true);
  });

  it('with --user prints a credentials-file line the file parser reads back', async () => {
    const { code, out } = await run(['--user', 'fleet', '--containers', 'C1*,D02', '--cost', '10'], 'pw');
    expect(code).toBe(0);
    const { users, problems } = parseCredentialsFile(out);
    expect(problems).toEqual([]);
    expect(users).toMatchObject([{ username: 'fleet', containers: ['C1*', 'D02'] }]);
    expect(await verifyPassword('pw', parsed(users[0]!.passwordHash))).toBe(true);
  });

  it('refuses an empty password and bad flags, naming the flag', async () => {
    expect(await run([], '\n')).toMatchObject({ code: 2, err: expect.stringContaining('expected a password') });
    expect(parseHashPasswordArgs(['--user', 'a b'])).toEqual({ ok: false, message: '--user: expected 1-128 characters without spaces or colons, got "a b"' });
    expect(parseHashPasswordArgs(['--containers', 'C01'])).toEqual({ ok: false, message: '--containers: expected --user too' });
    expect(parseHashPasswordArgs(['--user', 'a', '--containers', 'reefer/#'])).toMatchObject({ ok: false });
    expect(parseHashPasswordArgs(['--cost', '30'])).toEqual({ ok: false, message: '--cost: expected an integer from 10 to 20, got "30"' });
    expect(parseHashPasswordArgs(['--password', 'x'])).toMatchObject({ ok: false });
  });
});
