/**
 * The downlink: commands from the cloud to the devices behind this gateway. A command from the
 * source is stored in the outbox database (deduplicated by command id) before the source moves past
 * it, so it waits out a gateway restart or a device that is away. It is published to the device at
 * QoS 1 as soon as it arrives and again whenever the device subscribes to its commands topic, until
 * the device acknowledges it on its ack topic; one past its expiry is never published but marked
 * `expired`. Every change of state is queued as a status row that the uplink sends to Kafka in its
 * transactions, so each status reaches the status topic once.
 */
import type { Logger } from 'pino';
import {
  CONTAINER_PATTERN,
  decodeCommand,
  decodeCommandAck,
  encodeCommand,
  encodeCommandStatus,
  GATEWAY_ID_HEADER,
  isStateChange,
  MAX_COMMAND_ID_LENGTH,
  type CommandState,
  type ReeferCommand,
} from '../../cloud-bridge/commands.js';
import { parseJsonObject } from '../../cloud-bridge/json-value.js';
import type { Outbox, StoredCommand } from '../outbox/sqlite-outbox.js';
import type { CommandSource } from './command-source.js';

export interface DownlinkOptions {
  gatewayId: string;
  /** Commands waiting for their devices at most; one past this is refused and reported `rejected`. */
  maxPendingCommands: number;
  /** How often waiting commands are checked for expiry. */
  expiryCheckIntervalMs: number;
  /** How long a finished command's id is remembered, so a repeat of it is recognised and dropped. */
  retainFinishedMs: number;
}

export interface DownlinkDeps {
  outbox: Pick<Outbox, 'storeCommand' | 'pendingCommands' | 'pendingCommandCount' | 'expiredCommands' | 'command' | 'setCommandState' | 'pruneCommands'>;
  /** Publishes a command to the device's commands topic (QoS 1). */
  publish(containerId: string, payload: Buffer): Promise<void>;
  /** Where commands come from; none means only what is already stored is delivered. */
  source?: CommandSource;
  /** A status row was queued: the uplink has something to send. */
  onStatusQueued(): void;
  logger: Logger;
  now(): number;
}

export interface DownlinkStats {
  /** Commands stored for delivery. */
  stored: number;
  /** Commands received again (same id) and dropped. */
  duplicates: number;
  /** Records that were not commands for this gateway (bad JSON, bad fields, another gateway's id). */
  invalid: number;
  /** Commands refused because maxPendingCommands were waiting. */
  refused: number;
  /** Commands a device acknowledged receiving (PUBACK). */
  delivered: number;
  applied: number;
  rejected: number;
  expired: number;
  /** Invalid acknowledgements from devices (bad JSON, unknown command). */
  badAcks: number;
  /** Commands waiting for their devices now. */
  pending: number;
}

export interface Downlink {
  start(): void;
  /** Takes one command record's value and headers; resolves once it is durable (or refused and counted). */
  store(value: Buffer, headers: Record<string, string>): Promise<void>;
  /** The device subscribed to its commands: sends it what waits for it. */
  onSubscribe(containerId: string): void;
  /** The device acknowledged (PUBACK) a command publish. */
  onDelivered(containerId: string, payload: Buffer): void;
  /** The device's acknowledgement from its ack topic; resolves once recorded. */
  onAck(containerId: string, payload: Buffer): Promise<void>;
  stats(): DownlinkStats;
  close(): Promise<void>;
}

/** How often finished commands past commands.retainFinishedMs are forgotten. */
const PRUNE_INTERVAL_MS = 3_600_000;

export function createDownlink(options: DownlinkOptions, deps: DownlinkDeps): Downlink {
  const log = deps.logger.child({ component: 'downlink' });
  const counts: Omit<DownlinkStats, 'pending'> = { stored: 0, duplicates: 0, invalid: 0, refused: 0, delivered: 0, applied: 0, rejected: 0, expired: 0, badAcks: 0 };
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let closing: Promise<void> | undefined;
  let lastPruneMs = Number.NEGATIVE_INFINITY;

  function statusRow(c: { commandId: string; containerId: string }, status: CommandState, detail?: string) {
    const timeMs = deps.now();
    return {
      containerId: c.containerId,
      timeMs,
      value: encodeCommandStatus({ commandId: c.commandId, containerId: c.containerId, gatewayId: options.gatewayId, status, timeMs, ...(detail !== undefined ? { detail } : {}) }),
    };
  }

  /** Moves a command on; false when it had already moved (another path got there first). */
  function move(command: StoredCommand, to: CommandState, detail?: string): boolean {
    if (!isStateChange(command.state as CommandState, to)) return false;
    const changed = deps.outbox.setCommandState(command.commandId, command.state, to, statusRow(command, to, detail));
    if (changed) {
      if (to === 'delivered') counts.delivered += 1;
      else if (to === 'applied' || to === 'rejected' || to === 'expired') counts[to] += 1;
      deps.onStatusQueued();
    }
    return changed;
  }

  function expire(command: StoredCommand): void {
    if (move(command, 'expired', `expired at ${new Date(command.expiresMs).toISOString()} before the device acknowledged it`)) {
      log.info({ commandId: command.commandId, containerId: command.containerId }, 'command expired undelivered');
    }
  }

  function send(command: StoredCommand): void {
    if (!running) return;
    deps.publish(command.containerId, command.value).catch((error: unknown) => {
      log.warn({ err: error instanceof Error ? error.message : String(error), commandId: command.commandId }, 'could not publish a command; sent again when the device subscribes');
    });
  }

  function sweep(): void {
    const now = deps.now();
    try {
      // A command already on its way may have been applied; only one never delivered is expired here.
      for (const c of deps.outbox.expiredCommands(now)) expire(c);
      if (now - lastPruneMs >= PRUNE_INTERVAL_MS) {
        lastPruneMs = now;
        deps.outbox.pruneCommands(now - options.retainFinishedMs);
      }
    } catch (error) {
      log.error({ err: error instanceof Error ? error.message : String(error) }, 'could not check commands for expiry');
    }
  }

  /** The record's command id and container, when it has them, to report what was wrong with it. */
  function idsOf(value: Buffer): { commandId: string; containerId: string } | null {
    const o = parseJsonObject(value);
    if (typeof o === 'string' || typeof o.commandId !== 'string' || typeof o.containerId !== 'string') return null;
    if (o.commandId.length > MAX_COMMAND_ID_LENGTH || !CONTAINER_PATTERN.test(o.containerId)) return null;
    return { commandId: o.commandId, containerId: o.containerId };
  }

  function refuseRecord(value: Buffer, reason: string): void {
    counts.invalid += 1;
    const ids = idsOf(value);
    log.warn({ reason, commandId: ids?.commandId, containerId: ids?.containerId }, 'command record refused');
    if (!ids) return;
    const now = deps.now();
    // Stored as finished, so the refusal is reported once and a repeat of the record is recognised.
    const stored = deps.outbox.storeCommand(
      { commandId: ids.commandId, containerId: ids.containerId, state: 'rejected', expiresMs: now, receivedMs: now, value },
      statusRow(ids, 'rejected', `refused by gateway ${options.gatewayId}: ${reason}`),
    );
    if (stored) deps.onStatusQueued();
  }

  async function store(value: Buffer, headers: Record<string, string>): Promise<void> {
    if (headers[GATEWAY_ID_HEADER] !== options.gatewayId) return;
    const decoded = decodeCommand(value);
    if (!decoded.ok) {
      refuseRecord(value, decoded.reason);
      return;
    }
    const command: ReeferCommand = decoded.value;
    if (command.gatewayId !== options.gatewayId) {
      refuseRecord(value, `gatewayId: expected ${options.gatewayId} as in the ${GATEWAY_ID_HEADER} header, got ${command.gatewayId}`);
      return;
    }
    const now = deps.now();
    const base = { commandId: command.commandId, containerId: command.containerId, expiresMs: command.expiresMs, receivedMs: now, value: encodeCommand(command) };
    let state: CommandState = 'stored';
    let detail: string | undefined;
    if (command.expiresMs <= now) {
      state = 'expired';
      detail = `expired at ${new Date(command.expiresMs).toISOString()} before it reached gateway ${options.gatewayId}`;
    } else if (deps.outbox.pendingCommandCount() >= options.maxPendingCommands) {
      state = 'rejected';
      detail = `gateway ${options.gatewayId} already holds ${options.maxPendingCommands} undelivered commands (commands.maxPending)`;
    }
    const stored = deps.outbox.storeCommand({ ...base, state }, statusRow(command, state, detail));
    if (!stored) {
      counts.duplicates += 1;
      return;
    }
    deps.onStatusQueued();
    if (state === 'stored') {
      counts.stored += 1;
      send({ ...base, state });
    } else {
      counts[state === 'expired' ? 'expired' : 'refused'] += 1;
      log.warn({ commandId: command.commandId, containerId: command.containerId, detail }, `command ${state} on arrival`);
    }
  }

  return {
    start() {
      if (running || closing) return;
      running = true;
      sweep();
      timer = setInterval(sweep, options.expiryCheckIntervalMs);
      timer.unref();
      deps.source?.start(store);
    },
    store,
    onSubscribe(containerId) {
      if (!running) return;
      const now = deps.now();
      let pending: StoredCommand[];
      try {
        pending = deps.outbox.pendingCommands(containerId);
      } catch (error) {
        log.error({ err: error instanceof Error ? error.message : String(error), containerId }, 'could not read waiting commands');
        return;
      }
      for (const c of pending) {
        if (c.expiresMs <= now) expire(c);
        else send(c);
      }
    },
    onDelivered(containerId, payload) {
      const ids = idsOf(payload);
      if (!ids || ids.containerId !== containerId) return;
      const command = deps.outbox.command(ids.commandId);
      if (command?.state === 'stored') move(command, 'delivered');
    },
    async onAck(containerId, payload) {
      const ack = decodeCommandAck(payload);
      const command = ack.ok ? deps.outbox.command(ack.value.commandId) : null;
      if (!ack.ok || !command || command.containerId !== containerId) {
        counts.badAcks += 1;
        log.warn({ containerId, reason: ack.ok ? `no command ${ack.value.commandId} for ${containerId}` : ack.reason }, 'command acknowledgement ignored');
        return;
      }
      // A repeat (after a redelivery) finds the command finished and changes nothing.
      if (move(command, ack.value.status, ack.value.detail)) {
        log.info({ commandId: command.commandId, containerId, status: ack.value.status }, 'command acknowledged by the device');
      }
    },
    stats() {
      let pending = 0;
      try {
        pending = deps.outbox.pendingCommandCount();
      } catch {
        // A closed outbox has nothing pending.
      }
      return { ...counts, pending };
    },
    close() {
      closing ??= (async () => {
        running = false;
        if (timer) clearInterval(timer);
        await deps.source?.close();
      })();
      return closing;
    },
  };
}
