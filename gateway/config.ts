/**
 * The gateway's configuration: one declaration gives each key its type, check, default and meaning.
 * Sources merge as defaults < YAML file < environment (REEFER_*) < command-line flags, are validated
 * once at start, and the result is frozen. Every error names the key, the value and what was expected.
 */
import { z } from 'zod';
import {
  applyFlags,
  applySaslPasswordEnv,
  clientTlsSchema,
  deepFreeze,
  describeIssues,
  describeValue,
  fileMapping,
  getPath,
  kafkaSaslSchema,
  kafkaTlsSchema,
  logSectionSchema,
  requireTlsForPlainSasl,
  type FlagSpec,
} from '../cloud-bridge/config-support.js';
import { SERIAL_FRAMINGS } from '../schemas/serial-sentence.js';
import { CONTAINER_PATTERN, isPasswordHash, USERNAME } from './ingest/mqtt-auth.js';

const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port');

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Credentials belong in their own keys, which are never logged; a URL is logged and stamped on dead letters. */
function isUpstreamUrl(raw: string): boolean {
  try {
    const url = new URL(raw);
    return (url.protocol === 'mqtt:' || url.protocol === 'mqtts:') && url.hostname !== '' && url.username === '' && url.password === '' && (url.pathname === '' || url.pathname === '/');
  } catch {
    return false;
  }
}

/** [MQTT-4.7.1-2], [MQTT-4.7.1-3]: '#' only as the whole last level, '+' only as a whole level. */
function isTopicFilter(filter: string): boolean {
  const levels = filter.split('/');
  return (
    filter.length > 0 &&
    levels.every((level, i) => (level === '#' ? i === levels.length - 1 : !level.includes('#')) && (level === '+' || !level.includes('+')))
  );
}

/** The client id an upstream broker sees when none is configured. */
export function defaultUpstreamClientId(gatewayId: string): string {
  return `${gatewayId}-upstream`;
}

/** Keys whose values never appear in messages; `sasl` written as one string by mistake ("user:password") too. */
const SECRET_KEYS: ReadonlySet<PropertyKey> = new Set(['password', 'passwordHash', 'sasl']);

const mqttUser = z
  .object({
    username: z.string().regex(USERNAME, 'expected 1-128 characters without spaces or colons').describe('The name the device logs in with.'),
    passwordHash: z
      .string()
      .refine(isPasswordHash, 'expected a hash printed by `reefer-gateway hash-password` ($scrypt$ln=…)')
      .describe('scrypt hash of its password, as `reefer-gateway hash-password` prints it; never the password itself.'),
    containers: z
      .array(z.string().regex(CONTAINER_PATTERN, 'expected a container id or pattern, without /, + or #'))
      .min(1)
      .optional()
      .describe('Containers it publishes for and takes commands of: ids, or patterns where * matches any run of characters (C0*). Its user name when absent.'),
  })
  .strict();

const mqttTls = z
  .object({
    port: z.number().int().min(0).max(65535).default(8883).describe('Port of the TLS listener; 0 lets the OS choose.'),
    certFile: z.string().min(1).describe('Required: PEM file of the gateway\'s certificate (with its chain).'),
    keyFile: z.string().min(1).describe('Required: PEM file of its private key.'),
    caFile: z.string().min(1).optional().describe('PEM file of the CAs that sign device certificates.'),
    requireClientCert: z.boolean().default(false).describe('The TLS handshake fails without a device certificate signed by caFile; the user name and password still say who the device is.'),
    required: z
      .boolean()
      .default(true)
      .describe('The plain listener (mqtt.port) refuses every device, counted as tls-required, so devices still on plain TCP show in the status; set mqtt.port to null to not listen at all.'),
  })
  .strict()
  .refine((tls) => !tls.requireClientCert || tls.caFile !== undefined, { path: ['caFile'], message: 'expected a CA file when requireClientCert is true' });

/** A bridge URL is logged, so credentials belong in uplink.bridge.username and password. */
function isBridgeUrl(raw: string): boolean {
  try {
    const url = new URL(raw);
    return (url.protocol === 'mqtt:' || url.protocol === 'mqtts:') && url.hostname !== '' && url.username === '' && url.password === '' && (url.pathname === '' || url.pathname === '/');
  } catch {
    return false;
  }
}

const uplinkBridge = z
  .object({
    urls: z
      .array(z.string().refine(isBridgeUrl, 'expected mqtts://host[:port] (or mqtt://) without credentials'))
      .min(1)
      .describe('Required: the bridge instances, tried in turn; when the one in use fails, the gateway moves to the next.'),
    username: z.string().min(1).optional().describe('User name at the bridge: the gateway id, which is what it is when absent (the bridge knows a gateway by its login).'),
    password: z.string().min(1).optional().describe('Password at the bridge; never logged. Or passwordFile.'),
    passwordFile: z.string().min(1).optional().describe('File whose first line is the password, read at start (keeps it out of the config file).'),
    tls: clientTlsSchema({ server: "the bridge's certificate", client: "the gateway's client certificate", requirers: 'bridges' })
      .optional()
      .describe('TLS settings for mqtts:// URLs.'),
    compression: z
      .enum(['brotli', 'deflate', 'none'])
      .default('brotli')
      .describe('Compression of the batches on the link: brotli is ~10 % smaller than deflate at no more CPU (docs/bridge.md has the figures).'),
    keepaliveS: z.number().int().min(5).max(65535).default(30).describe('MQTT keep-alive: how soon a bridge gone silent is noticed.'),
    connectTimeoutMs: z.number().int().min(100).max(120000).default(10000).describe('Time allowed from opening the connection to CONNACK.'),
    reconnectMinMs: z.number().int().min(10).max(600000).default(500).describe('First wait before trying the next bridge URL.'),
    reconnectMaxMs: z.number().int().min(10).max(3600000).default(30000).describe('Longest wait between attempts while no bridge answers.'),
  })
  .strict()
  .superRefine((bridge, ctx) => {
    if ((bridge.password === undefined) === (bridge.passwordFile === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['password'], message: 'expected exactly one of password and passwordFile' });
    }
    if (bridge.reconnectMinMs > bridge.reconnectMaxMs) ctx.addIssue({ code: 'custom', path: ['reconnectMinMs'], message: `expected at most uplink.bridge.reconnectMaxMs (${bridge.reconnectMaxMs})` });
  });

/** The URL is logged and keys the schema id cache, so credentials have no place in it. */
function isRegistryUrl(raw: string): boolean {
  try {
    const url = new URL(raw);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.username === '' && url.password === '' && url.search === '' && url.hash === '';
  } catch {
    return false;
  }
}

const schemaRegistry = z
  .object({
    url: z
      .string()
      .refine(isRegistryUrl, 'expected an http:// or https:// URL without credentials or query')
      .describe('Required: base URL of the Confluent-compatible API, e.g. http://registry:8081 (Confluent) or http://registry:8080/apis/ccompat/v7 (Apicurio).'),
    subject: z
      .string()
      .min(1)
      .optional()
      .describe('Subject ReeferTelemetry is registered under; `<kafka.topic>-value` when absent.'),
    requestTimeoutMs: z.number().int().min(100).max(120000).default(5000).describe('Time allowed for one registry request; a hung registry counts as unreachable.'),
  })
  .strict();

const upstreamBroker = z
  .object({
    url: z
      .string()
      .refine(isUpstreamUrl, 'expected mqtt://host[:port] or mqtts://host[:port] without credentials (use username and password)')
      .describe('Required: the broker to subscribe to, mqtt://host[:port] or mqtts://host[:port].'),
    clientId: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected 1-64 letters, digits, dot, underscore or dash')
      .optional()
      .describe('Client id of the persistent session; `<gatewayId>-upstream` when absent. Must stay the same across restarts, or queued readings are left behind in the old session.'),
    username: z.string().min(1).optional().describe('User name, if the broker requires one.'),
    password: z.string().optional().describe('Password, if the broker requires one; never logged.'),
    protocolVersion: z.literal([4, 5]).default(4).describe('MQTT protocol: 4 is 3.1.1, 5 is MQTT 5.'),
    topics: z
      .array(z.string().refine(isTopicFilter, 'expected an MQTT topic filter'))
      .min(1)
      .default(['reefer/+/telemetry'])
      .describe('Topic filters to subscribe to; subscribe to telemetry only, as every message is ingested as a reading.'),
    qos: z
      .literal(1)
      .default(1)
      .describe('Subscription QoS. Only 1: QoS 0 forfeits redelivery, and at QoS 2 the client acknowledges (PUBREC) before the reading is durable.'),
    keepaliveS: z.number().int().min(5).max(65535).default(30).describe('MQTT keep-alive: how often an idle connection is checked, and so how soon a broker gone silent is noticed.'),
    reconnectMinMs: z.number().int().min(10).max(600000).default(500).describe('First reconnection delay after the connection dropped.'),
    reconnectMaxMs: z.number().int().min(10).max(3600000).default(30000).describe('Longest reconnection delay while the broker stays unreachable.'),
    sessionExpiryS: z
      .number()
      .int()
      .min(60)
      .max(4294967295)
      .default(4294967295)
      .describe('MQTT 5 only: how long the broker keeps the session and its queued readings while the gateway is away; 4294967295 is never expire. (MQTT 3.1.1 sessions last until the broker expires them: mosquitto `persistent_client_expiration`.)'),
    maxInFlight: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .default(100)
      .describe('Messages stored at once, sharing commits; acknowledgements still leave in order. Sent to MQTT 5 brokers as Receive Maximum; MQTT 3.1.1 brokers apply their own limit (mosquitto `max_inflight_messages`, 20 by default).'),
  })
  .strict();

const serialPort = z
  .object({
    path: z.string().min(1).describe('Device node of the port, e.g. /dev/ttyUSB0; a /dev/serial/by-id/… link keeps its name when the adapter is replugged.'),
    baudRate: z.number().int().min(50).max(4000000).default(9600).describe('Line speed, bits per second.'),
    dataBits: z.literal([5, 6, 7, 8]).default(8).describe('Data bits per character.'),
    parity: z.enum(['none', 'even', 'odd']).default('none').describe('Parity bit.'),
    stopBits: z.literal([1, 2]).default(1).describe('Stop bits per character.'),
    framing: z.enum(SERIAL_FRAMINGS).describe('How the device writes a reading on a line: json, csv or nmea (the checksummed `$RFR,…*HH` sentence). See docs/serial.md.'),
    maxLineBytes: z
      .number()
      .int()
      .min(64)
      .max(1024 * 1024)
      .default(4096)
      .describe('Longest line kept; a longer one is rejected as oversized and skipped up to its newline.'),
  })
  .strict();

export const configSchema = z
  .object({
    gatewayId: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected 1-64 letters, digits, dot, underscore or dash')
      .default('gateway-1')
      .describe('Identifies this gateway; stamped on every record, with its sequence number.'),
    dataDir: z.string().min(1).default('./data').describe('Folder for the outbox database.'),
    site: z
      .object({
        timeZone: z
          .string()
          .refine(isTimeZone, 'expected an IANA time zone such as UTC or Europe/Rotterdam')
          .default('UTC')
          .describe('Zone of timestamps that devices send without one.'),
      })
      .strict()
      .prefault({}),
    mqtt: z
      .object({
        host: z.string().min(1).default('0.0.0.0').describe('Address the embedded MQTT broker listens on.'),
        port: z
          .number()
          .int()
          .min(0)
          .max(65535)
          .nullable()
          .default(1883)
          .describe('Port of the plain-TCP MQTT listener; 0 lets the OS choose; null for none (devices then use mqtt.tls).'),
        maxPayloadBytes: z
          .number()
          .int()
          .min(256)
          .max(16 * 1024 * 1024)
          .default(64 * 1024)
          .describe('Largest telemetry payload accepted; larger ones are rejected as oversized.'),
        tls: mqttTls.optional().describe('A TLS listener for devices; none when absent. See docs/security.md.'),
        auth: z
          .object({
            allowAnonymous: z
              .boolean()
              .default(false)
              .describe('Let devices connect without a user name, with no topic restrictions: only on a closed network, or for tests and the demo.'),
            users: z
              .array(mqttUser)
              .default([])
              .superRefine((users, ctx) => {
                const seen = new Set<string>();
                users.forEach((user, i) => {
                  if (seen.has(user.username)) ctx.addIssue({ code: 'custom', path: [i, 'username'], message: 'expected each user name once' });
                  seen.add(user.username);
                });
              })
              .describe('Devices that may connect, each with its password hash and containers. See docs/security.md.'),
            usersFile: z
              .string()
              .min(1)
              .optional()
              .describe('File of more users, one `username:passwordHash[:containers]` line each, as `reefer-gateway hash-password --user` prints them; read at start.'),
          })
          .strict()
          .prefault({}),
        limits: z
          .object({
            maxConnections: z.number().int().min(1).max(1_000_000).default(4096).describe('Open connections, on both listeners; more are closed at once (too-many-connections).'),
            maxPacketBytes: z
              .number()
              .int()
              .min(1024)
              .max(256 * 1024 * 1024)
              .default(128 * 1024)
              .describe('Largest MQTT packet read; a connection announcing a larger one is closed before it is buffered (packet-too-large). Above mqtt.maxPayloadBytes, so a slightly oversized reading is still dead-lettered. Worst-case buffering is maxConnections × this.'),
            maxTopicBytes: z.number().int().min(16).max(65535).default(256).describe('Longest topic name or filter, in bytes (topic-too-long).'),
            maxTopicLevels: z.number().int().min(3).max(100).default(8).describe('Most levels in a topic name or filter (topic-too-deep).'),
            readingsPerSecond: z
              .number()
              .min(0)
              .default(50)
              .describe('Publishes per second per client id, sustained; faster ones are held back (throttled), then refused (rate-limited). 0 for no limit.'),
            readingsBurst: z.number().int().min(1).default(500).describe('Publishes a client id may send at once after a quiet spell (the token bucket size).'),
            maxThrottleMs: z
              .number()
              .int()
              .min(0)
              .max(60_000)
              .default(2000)
              .describe('Longest a publish over the rate is held back; past it the publish is refused and, MQTT 3.1.1 having no other way, the connection closed.'),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .superRefine((mqtt, ctx) => {
        // Reported on maxPayloadBytes, the key usually raised: a default maxPacketBytes would read "got nothing".
        if (mqtt.limits.maxPacketBytes <= mqtt.maxPayloadBytes) {
          ctx.addIssue({ code: 'custom', path: ['maxPayloadBytes'], message: `expected less than mqtt.limits.maxPacketBytes (${mqtt.limits.maxPacketBytes}); raise both` });
        }
        if (mqtt.port === null && mqtt.tls === undefined) ctx.addIssue({ code: 'custom', path: ['port'], message: 'expected a port, or mqtt.tls: the broker needs a listener' });
        if (mqtt.tls && mqtt.port !== null && mqtt.port !== 0 && mqtt.port === mqtt.tls.port) {
          ctx.addIssue({ code: 'custom', path: ['tls', 'port'], message: `expected a port other than mqtt.port (${mqtt.port})` });
        }
      })
      .prefault({}),
    outbox: z
      .object({
        sync: z
          .enum(['full', 'normal'])
          .default('full')
          .describe('full: a reading acknowledged to a device survives a power cut (fsync per commit). normal: it survives a crash of the process; a power cut may lose the last commits.'),
        flushIntervalMs: z.number().int().min(0).max(1000).default(5).describe('Longest a reading waits for others to share its commit.'),
        maxBatch: z.number().int().min(1).max(100000).default(1000).describe('Readings that trigger a commit at once.'),
        maxBytes: z
          .number()
          .int()
          .min(64 * 1024)
          .default(1024 * 1024 * 1024)
          .describe('Cap on the readings waiting in the outbox, in bytes. Past it, routine readings are thinned, then dropped, and alarms last; each counted in the loss ledger.'),
        maxAgeMs: z
          .number()
          .int()
          .min(60_000)
          .default(30 * 24 * 3600_000)
          .describe('Readings waiting longer than this are expired (counted in the loss ledger).'),
        thinKeepEvery: z.number().int().min(2).max(100).default(2).describe('Thinning keeps one routine reading in this many per container.'),
        maxDeadLetters: z.number().int().min(1).max(10_000_000).default(10_000).describe('Dead letters kept in the outbox while they wait for Kafka; the oldest are forgotten first.'),
        dedupWindowMs: z
          .number()
          .int()
          .min(60_000)
          .default(7 * 24 * 3600_000)
          .describe('A reading resent with the same container id and measurement time within this window (by measurement time) is stored once.'),
        minFreeBytes: z
          .number()
          .int()
          .min(0)
          .default(64 * 1024 * 1024)
          .describe('Free disk space below which the gateway stops taking new readings (refuse) or sheds to make room (shed).'),
        onDiskFull: z
          .enum(['refuse', 'shed'])
          .default('refuse')
          .describe('When the disk is full: refuse leaves new readings unacknowledged so devices keep them and resend; shed drops the oldest routine readings (counted) to make room.'),
      })
      .strict()
      .prefault({}),
    kafka: z
      .object({
        brokers: z.array(hostPort).min(1).default(['127.0.0.1:9092']).describe('Bootstrap brokers, host:port.'),
        topic: z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name').default('reefer-telemetry').describe('Topic readings are produced to.'),
        deadLetterTopic: z
          .string()
          .regex(/^([A-Za-z0-9._-]{1,249})?$/, 'expected a Kafka topic name or empty')
          .default('reefer-deadletter')
          .describe('Topic rejected input is sent to, with its reason (JSON); empty keeps dead letters in the outbox only. Created with a 100 MiB size cap.'),
        clientId: z.string().min(1).default('reefer-gateway').describe('Kafka client id.'),
        compression: z.enum(['gzip', 'none']).default('gzip').describe('Compression of produce batches.'),
        connectionTimeoutMs: z.number().int().min(100).max(120000).default(3000).describe('Time allowed to connect to a broker.'),
        requestTimeoutMs: z.number().int().min(100).max(300000).default(10000).describe('Time allowed for one request; a hung broker fails it.'),
        createTopics: z.boolean().default(true).describe('Create the topic at start when it is missing.'),
        partitions: z.number().int().min(1).max(10000).default(3).describe('Partitions of a topic the gateway creates.'),
        tls: kafkaTlsSchema.optional().describe('TLS to the brokers; plain TCP when absent. See docs/security.md.'),
        sasl: kafkaSaslSchema.optional().describe('SASL authentication to the brokers; none when absent.'),
        schemaRegistry: schemaRegistry
          .optional()
          .describe('Frame record values in the Confluent wire format with the id a schema registry gives ReeferTelemetry, cached in the outbox; Avro single-object encoding when absent. See schemas/README.md.'),
      })
      .strict()
      .superRefine(requireTlsForPlainSasl)
      .prefault({}),
    uplink: z
      .object({
        mode: z
          .enum(['kafka', 'mqtt'])
          .default('kafka')
          .describe('kafka: straight to the Kafka brokers. mqtt: over MQTT to the bridge service (`reefer-bridge serve`), for links that cannot hold a Kafka connection; see docs/bridge.md.'),
        bridge: uplinkBridge.optional().describe('The bridge service, for uplink.mode mqtt.'),
        batchSize: z.number().int().min(1).max(100000).default(10000).describe('Most readings per transaction. A transaction costs several round trips to Kafka whatever its size, so a backlog drains faster in large ones; a live stream sends what has arrived meanwhile and never waits to fill one. A transaction is sent in Produce requests of at most 1 MB of records (uncompressed; about 200 bytes a reading), under the broker\'s default message.max.bytes.'),
        minBackoffMs: z.number().int().min(10).max(600000).default(250).describe('First retry delay after Kafka failed.'),
        maxBackoffMs: z.number().int().min(10).max(3600000).default(15000).describe('Longest retry delay while Kafka stays unreachable.'),
        idlePollMs: z.number().int().min(1).max(60000).default(250).describe('How often an idle uplink checks the outbox.'),
        lingerMs: z
          .number()
          .int()
          .min(0)
          .max(60000)
          .default(0)
          .describe(
            'Least time from the end of one transaction to the start of the next while the uplink keeps up: readings gather into fewer, larger transactions. Each costs the gateway about a millisecond of CPU and Kafka several round trips whatever its size, so on a slow CPU (a Raspberry Pi) 100–500 saves much of the CPU at moderate rates, for that much latency. A backlog (a full batch) goes without waiting. 0 sends as soon as the last transaction ended.',
          ),
        operationTimeoutMs: z
          .number()
          .int()
          .min(100)
          .max(600000)
          .default(15000)
          .describe('Longest one Kafka operation (a transaction, a probe) may take; past it the broker counts as hung and the uplink as down.'),
        probeIntervalMs: z.number().int().min(100).max(600000).default(5000).describe('How often an idle uplink checks that Kafka still answers.'),
        transactionTimeoutMs: z
          .number()
          .int()
          .min(1000)
          .max(900000)
          .default(30000)
          .describe('Kafka aborts a transaction left open this long by a gateway that died; consumers reading committed data wait at most this long.'),
        liveFirst: z.boolean().default(true).describe('After an outage, send fresh readings before the backlog (replayed readings carry the header replayed=true).'),
        liveFirstAfterMs: z
          .number()
          .int()
          .min(0)
          .default(30_000)
          .describe('Readings that waited at least this long when the link came back are a backlog, sent behind fresh ones; after a shorter blip everything is sent in order.'),
        replayRatePerSecond: z.number().min(0).default(0).describe('Backlog readings sent per second after an outage; 0 for as fast as Kafka takes them.'),
        statusTopic: z.string().regex(/^([A-Za-z0-9._-]{1,249})?$/, 'expected a Kafka topic name or empty').default('gateway-status').describe('Topic for status and the loss ledger (compacted, key = gateway id); empty for none.'),
        statusIntervalMs: z.number().int().min(1000).default(30000).describe('How often the status is sent, besides whenever the uplink comes back.'),
        closeTimeoutMs: z
          .number()
          .int()
          .min(0)
          .max(600000)
          .default(5000)
          .describe("Longest a stop waits for the uplink's Kafka transaction in flight. What Kafka has not confirmed by then stays in the outbox and is sent, once, after the restart. Keep the whole stop within the supervisor's grace period (Docker's is 10 s)."),
      })
      .strict()
      .superRefine((uplink, ctx) => {
        if (uplink.mode === 'mqtt' && uplink.bridge === undefined) ctx.addIssue({ code: 'custom', path: ['bridge'], message: 'expected the bridge (urls, password) when uplink.mode is mqtt' });
      })
      .prefault({}),
    commands: z
      .object({
        enabled: z
          .boolean()
          .default(false)
          .describe('Deliver commands from Kafka to the devices (reefer/<containerId>/commands) and report what became of them. See docs/commands.md.'),
        topic: z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name').default('reefer-commands').describe('Topic the commands come from (key = container id, header gateway_id).'),
        statusTopic: z
          .string()
          .regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name')
          .default('reefer-command-status')
          .describe('Topic for each change of state of a command (stored, delivered, applied, rejected, expired), sent exactly once with the readings.'),
        maxPending: z.number().int().min(1).max(1_000_000).default(10_000).describe('Commands waiting for their devices at most; one more is refused and reported rejected.'),
        expiryCheckIntervalMs: z.number().int().min(10).max(600_000).default(1000).describe('How often waiting commands are checked for expiry.'),
        retainFinishedMs: z
          .number()
          .int()
          .min(60_000)
          .default(7 * 24 * 3_600_000)
          .describe('How long the id of a finished command is remembered, so a repeat of it is dropped.'),
      })
      .strict()
      .prefault({}),
    upstream: z
      .object({
        brokers: z
          .array(upstreamBroker)
          .default([])
          .describe('MQTT brokers the gateway subscribes to as a client, beside its embedded broker; none by default. See docs/upstream.md.'),
      })
      .strict()
      .prefault({}),
    serial: z
      .object({
        ports: z
          .array(serialPort)
          .default([])
          .superRefine((ports, ctx) => {
            const seen = new Set<string>();
            ports.forEach((port, i) => {
              if (seen.has(port.path)) ctx.addIssue({ code: 'custom', path: [i, 'path'], message: 'expected each port path once' });
              seen.add(port.path);
            });
          })
          .describe('Serial ports devices write readings to, one reading per line; none by default. See docs/serial.md.'),
        reopenMinMs: z.number().int().min(10).max(600000).default(500).describe('First wait before reopening a port that went away or could not be opened.'),
        reopenMaxMs: z.number().int().min(10).max(3600000).default(10000).describe('Longest wait between attempts to reopen a port that stays away.'),
        presenceCheckMs: z
          .number()
          .int()
          .min(10)
          .max(60000)
          .default(1000)
          .describe("How often an open port's device node is checked; one that vanished or names another device counts as unplugged."),
      })
      .strict()
      .prefault({}),
    lanes: z
      .object({
        temperatureExcursionC: z
          .number()
          .min(0)
          .max(100)
          .default(3)
          .describe('A reading this many °C from its setpoint travels in the alarm lane, as do door-open, power-off and maintenance readings.'),
      })
      .strict()
      .prefault({}),
    http: z
      .object({
        enabled: z.boolean().default(true).describe('Serve /healthz, /readyz, /metrics, /api/status and the dashboard. See docs/operations.md.'),
        host: z.string().min(1).default('0.0.0.0').describe('Address the HTTP server listens on.'),
        port: z.number().int().min(0).max(65535).default(8080).describe('Port of the HTTP server; 0 lets the OS choose.'),
      })
      .strict()
      .prefault({}),
    log: logSectionSchema,
  })
  .strict();

export type GatewayConfig = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  readonly code = 'REEFER_CONFIG_INVALID';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Flags and the config key each sets; environment variables are REEFER_ + the flag in upper snake case. */
export const CONFIG_FLAGS = {
  'gateway-id': { key: 'gatewayId', kind: 'string', help: 'gateway id stamped on every record' },
  'data-dir': { key: 'dataDir', kind: 'string', help: 'folder for the outbox database' },
  'mqtt-host': { key: 'mqtt.host', kind: 'string', help: 'address the MQTT broker listens on' },
  'mqtt-port': { key: 'mqtt.port', kind: 'number', help: 'port of the embedded MQTT broker (0: any free port)' },
  'kafka-brokers': { key: 'kafka.brokers', kind: 'list', help: 'comma-separated Kafka bootstrap brokers, host:port' },
  topic: { key: 'kafka.topic', kind: 'string', help: 'Kafka topic for readings' },
  sync: { key: 'outbox.sync', kind: 'string', help: 'outbox durability: full or normal' },
  'time-zone': { key: 'site.timeZone', kind: 'string', help: 'zone of timestamps sent without one' },
  'log-level': { key: 'log.level', kind: 'string', help: 'log level' },
  'http-port': { key: 'http.port', kind: 'number', help: 'port of the HTTP server: metrics, health, dashboard (0: any free port)' },
} as const satisfies Record<string, FlagSpec>;

export type ConfigFlag = keyof typeof CONFIG_FLAGS;

export interface ConfigSources {
  /** Parsed YAML file contents, if a file was given. */
  file?: unknown;
  /** Where the file came from, for messages. */
  fileName?: string;
  env?: Record<string, string | undefined>;
  flags?: Partial<Record<ConfigFlag, string>>;
}

export function resolveConfig(sources: ConfigSources): Readonly<GatewayConfig> {
  const problems: string[] = [];
  const file = fileMapping(sources.file, sources.fileName);
  if (!file.ok) throw new ConfigError([file.problem]);
  const merged = file.merged;
  // Environment variables (REEFER_ + the flag in upper snake case; empty ones ignored), then flags.
  const fromEnv = Object.fromEntries(Object.keys(CONFIG_FLAGS).map((flag) => [flag, sources.env?.[`REEFER_${flag.toUpperCase().replace(/-/g, '_')}`] || undefined]));
  applyFlags(merged, CONFIG_FLAGS, fromEnv);
  applySaslPasswordEnv(merged, sources.env);
  applyFlags(merged, CONFIG_FLAGS, sources.flags ?? {});
  const result = configSchema.safeParse(merged);
  if (!result.success) throw new ConfigError(describeIssues(result.error.issues, merged, SECRET_KEYS));
  if (result.data.uplink.minBackoffMs > result.data.uplink.maxBackoffMs) {
    throw new ConfigError([
      `uplink.minBackoffMs: expected at most uplink.maxBackoffMs (${result.data.uplink.maxBackoffMs}), got ${result.data.uplink.minBackoffMs}`,
    ]);
  }
  const sessions = new Set<string>();
  result.data.upstream.brokers.forEach((broker, i) => {
    broker.clientId ??= defaultUpstreamClientId(result.data.gatewayId);
    if (broker.reconnectMinMs > broker.reconnectMaxMs) {
      problems.push(`upstream.brokers.${i}.reconnectMinMs: expected at most upstream.brokers.${i}.reconnectMaxMs (${broker.reconnectMaxMs}), got ${broker.reconnectMinMs}`);
    }
    // Two connections with one client id take the session from each other, over and over.
    const session = `${new URL(broker.url).host} ${broker.clientId}`;
    if (sessions.has(session)) problems.push(`upstream.brokers.${i}: expected a client id not used for the same broker above, got ${describeValue(broker.clientId)}`);
    sessions.add(session);
  });
  const bridgeUser = result.data.uplink.bridge?.username;
  if (bridgeUser !== undefined && bridgeUser !== result.data.gatewayId) {
    // The bridge takes the gateway id from the login: records and topics of another id are refused.
    problems.push(`uplink.bridge.username: expected the gateway id ${describeValue(result.data.gatewayId)} (the bridge knows a gateway by its login), got ${describeValue(bridgeUser)}`);
  }
  if (result.data.serial.reopenMinMs > result.data.serial.reopenMaxMs) {
    problems.push(`serial.reopenMinMs: expected at most serial.reopenMaxMs (${result.data.serial.reopenMaxMs}), got ${result.data.serial.reopenMinMs}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(result.data);
}

/** Every key with its default and meaning, for the configuration reference in the docs. */
export function describeConfig(): { key: string; default: unknown; meaning: string }[] {
  const rows: { key: string; default: unknown; meaning: string }[] = [];
  const defaults = configSchema.parse({});
  function walk(schema: z.ZodType, path: string[]): void {
    let inner: z.ZodType = schema;
    while (inner instanceof z.ZodDefault || inner instanceof z.ZodPrefault || inner instanceof z.ZodOptional) inner = inner.unwrap() as z.ZodType;
    if (inner instanceof z.ZodObject) {
      // An optional block (mqtt.tls) gets a row of its own; its keys' defaults apply once it is given.
      if (schema instanceof z.ZodOptional) rows.push({ key: path.join('.'), default: undefined, meaning: schema.description ?? '' });
      for (const [name, child] of Object.entries(inner.shape)) walk(child as z.ZodType, [...path, name]);
      return;
    }
    if (inner instanceof z.ZodArray && inner.element instanceof z.ZodObject) {
      rows.push({ key: path.join('.'), default: getPath(defaults, path), meaning: schema.description ?? inner.description ?? '' });
      for (const [name, child] of Object.entries(inner.element.shape)) {
        const field = child as z.ZodType;
        const fallback = field.safeParse(undefined);
        rows.push({ key: `${path.join('.')}[].${name}`, default: fallback.success ? fallback.data : undefined, meaning: field.description ?? '' });
      }
      return;
    }
    const fallback = schema.safeParse(undefined);
    const found = getPath(defaults, path);
    rows.push({ key: path.join('.'), default: found !== undefined ? found : fallback.success ? fallback.data : undefined, meaning: schema.description ?? inner.description ?? '' });
  }
  walk(configSchema, []);
  return rows;
}
