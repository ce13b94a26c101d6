/**
 * Password hashes for MQTT logins, shared by the gateway (device logins) and the bridge service
 * (gateway logins). Pure: no sockets and no files. scrypt runs on libuv's thread pool, so checking a
 * password never blocks the event loop.
 *
 * Passwords are stored as PHC strings, `$scrypt$ln=14,r=8,p=1$<salt>$<key>` (unpadded base64), with
 * a random salt per entry, so two logins with the same password have different entries.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

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
