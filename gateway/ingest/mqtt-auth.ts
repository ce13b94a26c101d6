/**
 * Who may connect to the embedded MQTT broker, and which topics each device may use. Pure: no
 * sockets and no files. The password hashes themselves (scrypt, PHC strings) live in
 * cloud-bridge/bridge-password.ts, shared with the bridge service's gateway logins.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { hashPassword, parsePasswordHash, verifyPassword, type PasswordHash } from '../../cloud-bridge/bridge-password.js';

export { DEFAULT_SCRYPT_PARAMS, hashPassword, isPasswordHash, parsePasswordHash, verifyPassword, type PasswordHash, type ScryptParams } from '../../cloud-bridge/bridge-password.js';

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
