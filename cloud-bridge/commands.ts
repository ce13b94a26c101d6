/**
 * Commands to devices and what became of them. Pure: encoding, decoding and checking, no I/O.
 *
 * `reefer-commands` (key = container id, header `gateway_id` = the gateway serving the container,
 * value = UTF-8 JSON {@link ReeferCommand}) carries commands from the cloud to the gateways; each gateway
 * stores the ones addressed to it, delivers them to the device on `reefer/<containerId>/commands` and
 * reports every change of state on `reefer-command-status` (key = container id, value = UTF-8 JSON
 * {@link CommandStatus}). A device acknowledges on `reefer/<containerId>/commands/ack` with
 * {@link CommandAck}.
 */
import { parseJsonObject } from './json-value.js';

export const COMMAND_KINDS = ['setpoint', 'maintenance', 'defrost'] as const;
export type CommandKind = (typeof COMMAND_KINDS)[number];

export const COMMAND_STATES = ['stored', 'delivered', 'applied', 'rejected', 'expired'] as const;
export type CommandState = (typeof COMMAND_STATES)[number];

/** States after which nothing more happens to a command. */
export const FINAL_COMMAND_STATES: ReadonlySet<CommandState> = new Set(['applied', 'rejected', 'expired']);

export const DEFAULT_COMMANDS_TOPIC = 'reefer-commands';
export const DEFAULT_COMMAND_STATUS_TOPIC = 'reefer-command-status';
/** The header naming the gateway a command is for. */
export const GATEWAY_ID_HEADER = 'gateway_id';

/** Setpoints a reefer accepts, °C: vaccines at −70 to a warm cargo at +30. */
export const SETPOINT_RANGE_C = [-70, 30] as const;
/** Longest a command id may be; it is stored and echoed by devices. */
export const MAX_COMMAND_ID_LENGTH = 128;

export interface ReeferCommand {
  /** Unique per command: gateways and devices drop a repeat with the same id. */
  commandId: string;
  containerId: string;
  gatewayId: string;
  kind: CommandKind;
  /** °C; required for `setpoint`, absent otherwise. */
  targetTemperature?: number;
  issuedMs: number;
  /** Past this time the command is not delivered; it is reported `expired`. */
  expiresMs: number;
}

export interface CommandStatus {
  commandId: string;
  containerId: string;
  gatewayId: string;
  status: CommandState;
  timeMs: number;
  /** Why: a device's reason for a rejection, or what was wrong with a refused command. */
  detail?: string;
}

/** What a device publishes on its ack topic. */
export interface CommandAck {
  commandId: string;
  status: 'applied' | 'rejected';
  detail?: string;
}

export function commandsTopic(containerId: string): string {
  return `reefer/${containerId}/commands`;
}

export function commandAckTopic(containerId: string): string {
  return `reefer/${containerId}/commands/ack`;
}

const ID_PATTERN = /^[A-Za-z0-9._:-]+$/;
/** Container ids travel in MQTT topic levels: no separators or wildcards. */
export const CONTAINER_PATTERN = /^[^/#+\s]{1,64}$/;

export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Checks a command; every problem is named with the field, the value and what was expected. */
export function checkCommand(input: unknown): Checked<ReeferCommand> {
  if (typeof input !== 'object' || input === null) return { ok: false, reason: 'expected an object' };
  const c = input as Record<string, unknown>;
  const bad = (field: string, expected: string): Checked<ReeferCommand> => ({
    ok: false,
    reason: `${field}: expected ${expected}, got ${JSON.stringify(c[field]) ?? 'nothing'}`,
  });
  if (typeof c.commandId !== 'string' || c.commandId.length > MAX_COMMAND_ID_LENGTH || !ID_PATTERN.test(c.commandId)) {
    return bad('commandId', `1-${MAX_COMMAND_ID_LENGTH} letters, digits or . _ : -`);
  }
  if (typeof c.containerId !== 'string' || !CONTAINER_PATTERN.test(c.containerId)) return bad('containerId', 'a container id without / # + or spaces');
  if (typeof c.gatewayId !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(c.gatewayId)) return bad('gatewayId', 'a gateway id');
  if (typeof c.kind !== 'string' || !(COMMAND_KINDS as readonly string[]).includes(c.kind)) return bad('kind', COMMAND_KINDS.join(', '));
  if (c.kind === 'setpoint') {
    const t = c.targetTemperature;
    if (typeof t !== 'number' || !Number.isFinite(t) || t < SETPOINT_RANGE_C[0] || t > SETPOINT_RANGE_C[1]) {
      return bad('targetTemperature', `°C from ${SETPOINT_RANGE_C[0]} to ${SETPOINT_RANGE_C[1]} for a setpoint`);
    }
  } else if (c.targetTemperature !== undefined) {
    return bad('targetTemperature', `nothing for a ${c.kind} command`);
  }
  if (typeof c.issuedMs !== 'number' || !Number.isSafeInteger(c.issuedMs) || c.issuedMs < 0) return bad('issuedMs', 'epoch milliseconds');
  if (typeof c.expiresMs !== 'number' || !Number.isSafeInteger(c.expiresMs) || c.expiresMs <= c.issuedMs) return bad('expiresMs', 'epoch milliseconds after issuedMs');
  const command: ReeferCommand = {
    commandId: c.commandId,
    containerId: c.containerId,
    gatewayId: c.gatewayId,
    kind: c.kind as CommandKind,
    ...(c.kind === 'setpoint' ? { targetTemperature: c.targetTemperature as number } : {}),
    issuedMs: c.issuedMs,
    expiresMs: c.expiresMs,
  };
  return { ok: true, value: command };
}

export function encodeCommand(command: ReeferCommand): Buffer {
  return Buffer.from(JSON.stringify(command), 'utf8');
}

/** Decodes and checks a command record's value; a reason (never a throw) when it is not one. */
export function decodeCommand(value: Buffer | null): Checked<ReeferCommand> {
  const parsed = parseJsonObject(value);
  return typeof parsed === 'string' ? { ok: false, reason: parsed } : checkCommand(parsed);
}

/** A command record as published to `reefer-commands`. */
export function commandRecord(command: ReeferCommand): { key: string; value: Buffer; headers: Record<string, string>; timestampMs: number } {
  return { key: command.containerId, value: encodeCommand(command), headers: { [GATEWAY_ID_HEADER]: command.gatewayId }, timestampMs: command.issuedMs };
}

export function encodeCommandStatus(status: CommandStatus): Buffer {
  return Buffer.from(JSON.stringify(status), 'utf8');
}

export function decodeCommandStatus(value: Buffer | null): CommandStatus | null {
  const s = parseJsonObject(value);
  if (typeof s === 'string') return null;
  if (typeof s.commandId !== 'string' || typeof s.containerId !== 'string' || typeof s.gatewayId !== 'string' || typeof s.timeMs !== 'number') return null;
  if (typeof s.status !== 'string' || !(COMMAND_STATES as readonly string[]).includes(s.status)) return null;
  if (s.detail !== undefined && typeof s.detail !== 'string') return null;
  return s as unknown as CommandStatus;
}

/** Decodes a device's acknowledgement; a reason when it is not one. */
export function decodeCommandAck(value: Buffer | null): Checked<CommandAck> {
  const a = parseJsonObject(value);
  if (typeof a === 'string') return { ok: false, reason: a };
  if (typeof a.commandId !== 'string' || a.commandId.length === 0 || a.commandId.length > MAX_COMMAND_ID_LENGTH) {
    return { ok: false, reason: `commandId: expected a command id, got ${JSON.stringify(a.commandId) ?? 'nothing'}` };
  }
  if (a.status !== 'applied' && a.status !== 'rejected') return { ok: false, reason: `status: expected applied or rejected, got ${JSON.stringify(a.status) ?? 'nothing'}` };
  const detail = typeof a.detail === 'string' ? a.detail.slice(0, 512) : undefined;
  return { ok: true, value: { commandId: a.commandId, status: a.status, ...(detail !== undefined ? { detail } : {}) } };
}

/** Whether a command in `from` may move to `to`: forward only, never out of a final state. */
export function isStateChange(from: CommandState, to: CommandState): boolean {
  if (FINAL_COMMAND_STATES.has(from)) return false;
  if (from === to) return false;
  if (from === 'delivered' && to === 'stored') return false;
  return true;
}
