/**
 * Short ASCII strings (container ids, Kafka keys and header values) written into a buffer by hand:
 * for them a call into C++ (Buffer.byteLength, buf.write) costs more than the bytes themselves.
 */

/** Strings longer than this go to Buffer's own UTF-8 writer. */
const SHORT = 64;

/** True when `s` is at most 64 UTF-16 units, all ASCII: its UTF-8 bytes are its char codes. */
export function isShortAscii(s: string): boolean {
  if (s.length > SHORT) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** Bytes of `s` in UTF-8. */
export function utf8Length(s: string): number {
  return isShortAscii(s) ? s.length : Buffer.byteLength(s, 'utf8');
}

/** Writes `s` as UTF-8 at `at`; returns the position after it. */
export function writeUtf8(buf: Buffer, at: number, s: string): number {
  if (!isShortAscii(s)) return at + buf.write(s, at, 'utf8');
  for (let i = 0; i < s.length; i++) buf[at + i] = s.charCodeAt(i);
  return at + s.length;
}
