import { describe, expect, it } from 'vitest';
import { checkTopic, createLogThrottle, createPacketSizeGuard, createRateLimiter } from '../../gateway/ingest/mqtt-limits.js';

describe('rate limiter (token bucket per client id)', () => {
  const options = { ratePerSecond: 10, burst: 3, maxDelayMs: 250, maxKeys: 100 };

  it('lets a quiet client send its burst at once, then books each next reading 1/rate later, then refuses past maxDelayMs', () => {
    const limiter = createRateLimiter(options);
    expect([1, 2, 3].map(() => limiter.reserve('C01', 0))).toEqual([
      { ok: true, waitMs: 0 },
      { ok: true, waitMs: 0 },
      { ok: true, waitMs: 0 },
    ]);
    expect(limiter.reserve('C01', 0)).toEqual({ ok: true, waitMs: 100 });
    expect(limiter.reserve('C01', 0)).toEqual({ ok: true, waitMs: 200 });
    expect(limiter.reserve('C01', 0)).toEqual({ ok: false });
    // A refusal books nothing: the next reading, once time passed, waits only for what was booked.
    expect(limiter.reserve('C01', 100)).toEqual({ ok: true, waitMs: 200 });
  });

  it('refills at the rate up to the burst, never beyond', () => {
    const limiter = createRateLimiter(options);
    for (let i = 0; i < 3; i++) limiter.reserve('C01', 0);
    expect(limiter.reserve('C01', 100)).toEqual({ ok: true, waitMs: 0 });
    for (let i = 0; i < 3; i++) expect(limiter.reserve('C01', 60_000)).toEqual({ ok: true, waitMs: 0 });
    expect(limiter.reserve('C01', 60_000)).toEqual({ ok: true, waitMs: 100 });
  });

  it("keeps each client's bucket apart: one flooding client leaves the others' untouched", () => {
    const limiter = createRateLimiter(options);
    for (let i = 0; i < 10; i++) limiter.reserve('flood', 0);
    expect(limiter.reserve('flood', 0)).toEqual({ ok: false });
    expect(limiter.reserve('quiet', 0)).toEqual({ ok: true, waitMs: 0 });
  });

  it('takes everything when the rate is 0', () => {
    const limiter = createRateLimiter({ ...options, ratePerSecond: 0 });
    for (let i = 0; i < 1000; i++) expect(limiter.reserve('C01', 0)).toEqual({ ok: true, waitMs: 0 });
    expect(limiter.size()).toBe(0);
  });

  it('forgets the least recently used bucket past maxKeys, so rotating client ids cannot grow memory', () => {
    const limiter = createRateLimiter({ ...options, maxKeys: 2 });
    for (let i = 0; i < 3; i++) limiter.reserve('a', 0);
    limiter.reserve('b', 0);
    limiter.reserve('a', 0); // a is now the most recently used
    limiter.reserve('c', 0); // evicts b
    expect(limiter.size()).toBe(2);
    expect(limiter.reserve('a', 0)).toEqual({ ok: true, waitMs: 200 });
  });
});

/** A PUBLISH of `remaining` bytes after its fixed header, as it appears on the wire. */
function packet(remaining: number): Buffer {
  const length: number[] = [];
  let n = remaining;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    length.push(byte);
  } while (n > 0);
  return Buffer.concat([Buffer.from([0x32, ...length]), Buffer.alloc(remaining, 0x61)]);
}

describe('packet size guard', () => {
  it('lets packets within the limit through, whatever way the stream is cut into chunks', () => {
    const stream = Buffer.concat([packet(10), Buffer.from([0xc0, 0x00]), packet(200), packet(1000 - 3)]);
    for (const size of [1, 2, 3, 7, 64, stream.length]) {
      const guard = createPacketSizeGuard(1000);
      for (let i = 0; i < stream.length; i += size) expect(guard.push(stream.subarray(i, i + size))).toEqual({ ok: true });
    }
  });

  it('refuses a packet as soon as its header announces more than the limit, before any of its body arrives', () => {
    const guard = createPacketSizeGuard(1000);
    expect(guard.push(packet(50))).toEqual({ ok: true });
    const huge = packet(200 * 1024 * 1024).subarray(0, 5);
    expect(guard.push(huge.subarray(0, 2))).toEqual({ ok: true });
    expect(guard.push(huge.subarray(2))).toEqual({ ok: false, reason: 'packet-too-large', packetBytes: 1 + 4 + 200 * 1024 * 1024 });
  });

  it('counts the fixed header in the size: a packet exactly at the limit passes, one byte more does not', () => {
    expect(createPacketSizeGuard(1000).push(packet(997))).toEqual({ ok: true });
    expect(createPacketSizeGuard(1000).push(packet(998))).toMatchObject({ ok: false, packetBytes: 1001 });
  });

  it('refuses a remaining length longer than four bytes [MQTT-2.2.3]', () => {
    expect(createPacketSizeGuard(1 << 30).push(Buffer.from([0x32, 0xff, 0xff, 0xff, 0xff, 0x01]))).toEqual({ ok: false, reason: 'malformed-length' });
  });
});

describe('topic limits', () => {
  const limits = { maxTopicBytes: 32, maxTopicLevels: 4 };

  it('accepts the telemetry topic and refuses longer or deeper ones', () => {
    expect(checkTopic('reefer/C01/telemetry', limits)).toBeNull();
    expect(checkTopic(`reefer/${'C'.repeat(40)}/telemetry`, limits)).toBe('topic-too-long');
    expect(checkTopic('reefer/C01/a/b/c', limits)).toBe('topic-too-deep');
    expect(checkTopic('a/b/c/d', limits)).toBeNull();
  });

  it('measures length in bytes, as on the wire', () => {
    expect(checkTopic('é'.repeat(16), limits)).toBeNull();
    expect(checkTopic('é'.repeat(17), limits)).toBe('topic-too-long');
  });
});

describe('refusal log throttle', () => {
  it('logs the first of a kind, counts the rest until the interval passed, then logs with that count', () => {
    const throttle = createLogThrottle(1000);
    expect(throttle.admit('bad-password', 0)).toEqual({ log: true, suppressed: 0 });
    expect(throttle.admit('bad-password', 10)).toEqual({ log: false, suppressed: 1 });
    expect(throttle.admit('bad-password', 20)).toEqual({ log: false, suppressed: 2 });
    expect(throttle.admit('rate-limited', 20)).toEqual({ log: true, suppressed: 0 });
    expect(throttle.admit('bad-password', 1000)).toEqual({ log: true, suppressed: 2 });
    expect(throttle.admit('bad-password', 1500)).toEqual({ log: false, suppressed: 1 });
  });
});
