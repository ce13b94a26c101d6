/**
 * The embedded broker's input limits, as pure logic: a token bucket per client, a scanner that
 * learns each MQTT packet's size from its fixed header before the packet is buffered, topic
 * checks, and a throttle for the log lines refusals produce.
 */

export interface RateLimiterOptions {
  /** Tokens added per second; 0 turns the limit off. */
  ratePerSecond: number;
  /** Bucket size: readings a quiet client may send at once. */
  burst: number;
  /** A reading over the rate waits at most this long for its token; past it, it is refused. */
  maxDelayMs: number;
  /** Buckets kept; the least recently used is forgotten past it. */
  maxKeys: number;
}

export type RateDecision = { ok: true; waitMs: number } | { ok: false };

export interface RateLimiter {
  /** Takes a token for `key` now, or books the next one (waitMs > 0), or refuses. */
  reserve(key: string, nowMs: number): RateDecision;
  size(): number;
}

export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const buckets = new Map<string, { tokens: number; atMs: number }>();
  const perMs = options.ratePerSecond / 1000;
  return {
    reserve(key, nowMs) {
      if (options.ratePerSecond <= 0) return { ok: true, waitMs: 0 };
      const found = buckets.get(key);
      const bucket = found ?? { tokens: options.burst, atMs: nowMs };
      bucket.tokens = Math.min(options.burst, bucket.tokens + Math.max(0, nowMs - bucket.atMs) * perMs);
      bucket.atMs = nowMs;
      // Re-inserting keeps the map in least-recently-used order.
      buckets.delete(key);
      buckets.set(key, bucket);
      if (buckets.size > options.maxKeys) buckets.delete(buckets.keys().next().value!);
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return { ok: true, waitMs: 0 };
      }
      // Tokens go below zero for readings booked ahead, so each waits behind the ones before it.
      const waitMs = Math.ceil((1 - bucket.tokens) / perMs);
      if (waitMs > options.maxDelayMs) return { ok: false };
      bucket.tokens -= 1;
      return { ok: true, waitMs };
    },
    size: () => buckets.size,
  };
}

export type PacketScan = { ok: true } | { ok: false; reason: 'packet-too-large'; packetBytes: number } | { ok: false; reason: 'malformed-length' };

export interface PacketSizeGuard {
  /** Feeds the next bytes read from the connection; refuses as soon as a header announces too large a packet. */
  push(chunk: Uint8Array): PacketScan;
}

/**
 * MQTT's fixed header is a type byte and the remaining length (1-4 bytes, 7 bits each, low first)
 * [MQTT-2.2.3]. Reading it is enough to refuse a packet of up to 256 MB before it is buffered:
 * the packet parser aedes uses waits for the whole packet, however large, before looking at it.
 */
export function createPacketSizeGuard(maxPacketBytes: number): PacketSizeGuard {
  let state: 'type' | 'length' | 'body' = 'type';
  let length = 0;
  let lengthBytes = 0;
  let bodyLeft = 0;
  return {
    push(chunk) {
      let i = 0;
      while (i < chunk.length) {
        if (state === 'body') {
          const skip = Math.min(bodyLeft, chunk.length - i);
          bodyLeft -= skip;
          i += skip;
          if (bodyLeft === 0) state = 'type';
          continue;
        }
        if (state === 'type') {
          state = 'length';
          length = 0;
          lengthBytes = 0;
          i += 1;
          continue;
        }
        const byte = chunk[i]!;
        i += 1;
        length += (byte & 0x7f) * 128 ** lengthBytes;
        lengthBytes += 1;
        if (byte & 0x80) {
          if (lengthBytes === 4) return { ok: false, reason: 'malformed-length' };
          continue;
        }
        const packetBytes = 1 + lengthBytes + length;
        if (packetBytes > maxPacketBytes) return { ok: false, reason: 'packet-too-large', packetBytes };
        bodyLeft = length;
        state = length === 0 ? 'type' : 'body';
      }
      return { ok: true };
    },
  };
}

export interface TopicLimits {
  maxTopicBytes: number;
  maxTopicLevels: number;
}

export type TopicRefusal = 'topic-too-long' | 'topic-too-deep';

/** Checks a topic name or filter against the limits; null when within them. */
export function checkTopic(topic: string, limits: TopicLimits): TopicRefusal | null {
  if (Buffer.byteLength(topic, 'utf8') > limits.maxTopicBytes) return 'topic-too-long';
  let levels = 1;
  for (let i = 0; i < topic.length; i++) if (topic.charCodeAt(i) === 0x2f) levels += 1;
  return levels > limits.maxTopicLevels ? 'topic-too-deep' : null;
}

export interface LogThrottle {
  /** Whether to log an event of this kind now, and how many of its kind went unlogged since the last line. */
  admit(kind: string, nowMs: number): { log: boolean; suppressed: number };
}

/** At most one line per kind per interval, so a flood of refusals cannot flood the log (or an SD card). */
export function createLogThrottle(intervalMs: number): LogThrottle {
  const kinds = new Map<string, { lastMs: number; suppressed: number }>();
  return {
    admit(kind, nowMs) {
      const entry = kinds.get(kind);
      if (entry && nowMs - entry.lastMs < intervalMs) {
        entry.suppressed += 1;
        return { log: false, suppressed: entry.suppressed };
      }
      const suppressed = entry?.suppressed ?? 0;
      kinds.set(kind, { lastMs: nowMs, suppressed: 0 });
      return { log: true, suppressed };
    },
  };
}
