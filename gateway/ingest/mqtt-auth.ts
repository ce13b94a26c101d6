/**
 * Who may connect to the embedded MQTT broker, and which topics each device may use. Pure: no
 * sockets and no files. scrypt runs on libuv's thread pool, so checking a password never blocks
 * the event loop.
 *
 * Passwords are stored as PHC strings, `$scrypt$ln=14,r=8,p=1$<salt>$<key>` (unpadded base64), with
 * a random salt per entry, so two devices with the same password have different entries.
 */
import { createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export interface ScryptParams {
  /** log2 of the CPU/memory cost N. */
  logN: number;
  /** Block size. */
  r: number;
  /** Parallelism. */
  p: number;
}

/**
 * 16 MiB and ~0.1 s per check (on a 2-core x86 test machine; slower on a Pi). OWASP's 128 MiB would
 * let a handful of simultaneous logins exhaust a 1 GB Pi; and a device's password is checked once,
 * then recognised from a cache until the gateway restarts.
 */
export const DEFAULT_SCRYPT_PARAMS: Readonly<ScryptParams> = { logN: 14, r: 8, p: 1 };

const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Stored parameters are bounded so a hostile or mistyped entry cannot make one check take a gigabyte. */
const MAX_SCRYPT_MEMORY_BYTES = 256 * 1024 * 1024;

export interface PasswordHash {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

const PHC = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{11,})\$([A-Za-z0-9+/]{22,})$/;

function scryptMemory(params: ScryptParams): number {
  return 128 * 2 ** params.logN * params.r;
}

export function parsePasswordHash(text: string): { ok: true; hash: PasswordHash } | { ok: false; problem: string } {
  const match = PHC.exec(text);
  if (!match) return { ok: false, problem: 'expected $scrypt$ln=<n>,r=<r>,p=<p>$<salt>$<key>' };
  const params = { logN: Number(match[1]), r: Number(match[2]), p: Number(match[3]) };
  if (params.logN < 10 || params.logN > 20 || params.r < 1 || params.r > 32 || params.p < 1 || params.p > 16) {
    return { ok: false, problem: 'expected ln 10-20, r 1-32 and p 1-16' };
  }
  if (scryptMemory(params) > MAX_SCRYPT_MEMORY_BYTES) return { ok: false, problem: 'expected parameters needing at most 256 MiB' };
  return { ok: true, hash: { params, salt: Buffer.from(match[4]!, 'base64'), key: Buffer.from(match[5]!, 'base64') } };
}

export function isPasswordHash(text: string): boolean {
  return parsePasswordHash(text).ok;
}

function derive(password: Buffer | string, salt: Buffer, params: ScryptParams, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, length, { N: 2 ** params.logN, r: params.r, p: params.p, maxmem: 2 * scryptMemory(params) }, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

const unpadded = (bytes: Buffer) => bytes.toString('base64').replace(/=+$/, '');

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, params, KEY_BYTES);
  const text = `$scrypt$ln=${params.logN},r=${params.r},p=${params.p}$${unpadded(salt)}$${unpadded(key)}`;
  // Refuses parameters this module would not accept back.
  if (!isPasswordHash(text)) throw new RangeError(`scrypt parameters out of range: ${JSON.stringify(params)}`);
  return text;
}

export async function verifyPassword(password: Buffer | string, hash: PasswordHash): Promise<boolean> {
  const key = await derive(password, hash.salt, hash.params, hash.key.length);
  return timingSafeEqual(key, hash.key);
}

/** A device's login: its user name, password hash, and the containers it speaks for. */
export interface MqttUser {
  username: string;
  passwordHash: string;
  /** Container ids, or patterns where `*` matches any run of characters; [username] when absent. */
  containers?: readonly string[];
}

/** User names may not hold ':' (the credentials file's separator) or white space. */
export const USERNAME = /^[^\s:]{1,128}$/;
/** A container id or pattern is one topic level: no '/', and none of MQTT's wildcards. */
export const CONTAINER_PATTERN = /^[^\s/+#]{1,128}$/;

/**
 * Reads a credentials file: one `username:passwordHash[:container,container…]` line per device,
 * as `reefer-gateway hash-password --user` prints them. Blank lines and `#` comments are skipped.
 */
export function parseCredentialsFile(text: string): { users: MqttUser[]; problems: string[] } {
  const users: MqttUser[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const [username = '', passwordHash = '', containers, ...extra] = line.split(':');
    const where = `line ${i + 1}`;
    // Problems never quote the line: it holds a password hash.
    if (extra.length > 0) return void problems.push(`${where}: expected username:passwordHash[:containers]`);
    if (!USERNAME.test(username)) return void problems.push(`${where}: expected a user name without spaces`);
    const parsed = parsePasswordHash(passwordHash);
    if (!parsed.ok) return void problems.push(`${where} (${username}): password hash ${parsed.problem}`);
    const list = containers === undefined ? undefined : containers.split(',').map((c) => c.trim());
    if (list && (list.length === 0 || !list.every((c) => CONTAINER_PATTERN.test(c)))) {
      return void problems.push(`${where} (${username}): expected comma-separated container ids or patterns`);
    }
    users.push(list ? { username, passwordHash, containers: list } : { username, passwordHash });
  });
  return { users, problems };
}

/** Who a connected client is: anonymous (no restrictions), or a user limited to its containers. */
export type MqttIdentity = { kind: 'anonymous' } | { kind: 'user'; username: string; mayUse(containerId: string): boolean };

function containerMatcher(patterns: readonly string[]): (containerId: string) => boolean {
  const exact = new Set(patterns.filter((p) => !p.includes('*')));
  const globs = patterns
    .filter((p) => p.includes('*'))
    .map((p) => new RegExp(`^${p.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`));
  return (id) => exact.has(id) || globs.some((glob) => glob.test(id));
}

const isWildcard = (level: string) => level === '+' || level === '#';

/** A user may publish under `reefer/<container>/…` for its own containers only. */
export function mayPublish(identity: MqttIdentity, topic: string): boolean {
  if (identity.kind === 'anonymous') return true;
  const levels = topic.split('/');
  return levels.length >= 3 && levels[0] === 'reefer' && identity.mayUse(levels[1]!);
}

/** A user may subscribe to its own containers' commands, `reefer/<container>/commands[/…]`, and nothing else. */
export function maySubscribe(identity: MqttIdentity, filter: string): boolean {
  if (identity.kind === 'anonymous') return true;
  const levels = filter.split('/');
  return levels.length >= 3 && levels[0] === 'reefer' && levels[2] === 'commands' && !isWildcard(levels[1]!) && identity.mayUse(levels[1]!);
}

export type AuthRefusal = 'no-credentials' | 'unknown-user' | 'bad-password';

export type AuthOutcome =
  | { ok: true; identity: MqttIdentity }
  /** returnCode is the CONNACK code: 4 bad user name or password, 5 not authorized. */
  | { ok: false; reason: AuthRefusal; returnCode: 4 | 5 };

export interface MqttAuthenticator {
  authenticate(username: string | undefined, password: Buffer | undefined): Promise<AuthOutcome>;
}

export interface MqttAuthOptions {
  allowAnonymous: boolean;
  users: readonly MqttUser[];
}

/** Throws when a user name appears twice or a hash does not parse; config validation reports both first. */
export function createMqttAuthenticator(options: MqttAuthOptions): MqttAuthenticator {
  const users = new Map<string, { hash: PasswordHash; mayUse(containerId: string): boolean }>();
  for (const user of options.users) {
    if (users.has(user.username)) throw new Error(`MQTT user ${JSON.stringify(user.username)} is listed twice`);
    const parsed = parsePasswordHash(user.passwordHash);
    if (!parsed.ok) throw new Error(`MQTT user ${JSON.stringify(user.username)}: password hash ${parsed.problem}`);
    users.set(user.username, { hash: parsed.hash, mayUse: containerMatcher(user.containers ?? [user.username]) });
  }
  // Devices reconnect often (flaky links, gateway restarts): a password already checked is
  // recognised by a keyed digest instead of another scrypt run. The key never leaves the process.
  const cacheKey = randomBytes(32);
  const verified = new Map<string, Buffer>();
  const digest = (password: Buffer) => createHmac('sha256', cacheKey).update(password).digest();
  let decoy: Promise<PasswordHash> | undefined;

  return {
    async authenticate(username, password) {
      if (username === undefined || username === '') {
        if (options.allowAnonymous && (password === undefined || password.length === 0)) return { ok: true, identity: { kind: 'anonymous' } };
        return { ok: false, reason: 'no-credentials', returnCode: 5 };
      }
      const secret = password ?? Buffer.alloc(0);
      const user = users.get(username);
      if (!user) {
        // The same work as for a known user, so timing does not tell which user names exist.
        decoy ??= hashPassword(randomBytes(16).toString('hex')).then((text) => (parsePasswordHash(text) as { ok: true; hash: PasswordHash }).hash);
        await verifyPassword(secret, await decoy);
        return { ok: false, reason: 'unknown-user', returnCode: 4 };
      }
      const known = verified.get(username);
      const mac = digest(secret);
      if (!(known && timingSafeEqual(known, mac))) {
        if (!(await verifyPassword(secret, user.hash))) return { ok: false, reason: 'bad-password', returnCode: 4 };
        verified.set(username, mac);
      }
      return { ok: true, identity: { kind: 'user', username, mayUse: user.mayUse } };
    },
  };
}
