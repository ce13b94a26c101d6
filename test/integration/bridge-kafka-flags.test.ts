import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { errorChain, runBridgeCli } from '../../cloud-bridge/cli.js';
import { decodeCommand, encodeCommandStatus, type ReeferCommand } from '../../cloud-bridge/commands.js';
import { createKafkaClient } from '../../cloud-bridge/kafka-client.js';
import { SASL_PASSWORD_ENV } from '../../cloud-bridge/kafka-flags.js';
import { createCommandTopics, eventually } from '../harness/command-topics.js';
import { startKafkaBroker, type KafkaBroker } from '../harness/kafka-broker.js';
import { readRawTopic } from '../harness/topic-reader.js';

const OPERATOR_PASSWORD = `op-${randomUUID()}`;
const WRONG_PASSWORD = `not-${randomUUID()}`;

// A broker of its own: the shared one listens on plaintext only. Its plaintext listener stays for
// the test's own reads and writes, so only the subcommand goes through SASL_SSL.
let broker: KafkaBroker;
beforeAll(async () => {
  broker = await startKafkaBroker({ saslSsl: { users: [{ name: 'operator', password: OPERATOR_PASSWORD }] } });
  return () => broker.close();
});

/** `reefer-bridge command` in this process, as the bin runs it, with the secured listener's flags. */
function commandOverSaslSsl(args: string[], password: string) {
  const out = { stdout: '', stderr: '' };
  const flags = [
    '--kafka-brokers', broker.saslSslBootstrap!,
    '--kafka-tls-ca-file', broker.caFile!,
    '--kafka-sasl-mechanism', 'scram-sha-512',
    '--kafka-sasl-username', 'operator',
  ];
  const exited = runBridgeCli(['command', ...flags, ...args], {
    stdout: { write: (t: string) => (out.stdout += t) },
    stderr: { write: (t: string) => (out.stderr += t) },
    env: { [SASL_PASSWORD_ENV]: password },
    stopRequested: new Promise<string>(() => {}),
  });
  return { out, exited };
}

describe('reefer-bridge command against a broker that takes only SASL_SSL (SCRAM-SHA-512)', () => {
  it('publishes the command and follows its status over TLS with the password from the environment, exit 0 once applied', async () => {
    const topics = await createCommandTopics(broker.bootstrap);
    const commands = await readRawTopic(broker.bootstrap, topics.commands);
    onTestFinished(() => commands.close());

    const run = commandOverSaslSsl(
      ['--topic', topics.commands, '--status-topic', topics.status, '--container', 'C07', '--gateway', 'ship-7', '--setpoint', '-18', '--wait', '--wait-timeout', '30s'],
      OPERATOR_PASSWORD,
    );
    // What the producer wrote over SASL_SSL, read back over plaintext.
    const command = await eventually(
      () => commands.records().map((r) => decodeCommand(r.value)).find((c): c is { ok: true; value: ReeferCommand } => c.ok)?.value,
      20_000,
      'the command on its topic',
    );
    expect(command).toMatchObject({ containerId: 'C07', gatewayId: 'ship-7', kind: 'setpoint', targetTemperature: -18 });
    await eventually(() => (run.out.stdout.includes(command.commandId) ? true : undefined), 5_000, 'the command id on stdout');

    // The status a gateway would report; the subcommand's consumer reads it over SASL_SSL.
    const producer = createKafkaClient({ brokers: [broker.bootstrap], clientId: 'test-status' }).producer();
    await producer.connect();
    onTestFinished(() => producer.close());
    const status = { commandId: command.commandId, containerId: 'C07', gatewayId: 'ship-7', status: 'applied' as const, timeMs: Date.now() };
    await producer.send(topics.status, [{ key: 'C07', value: encodeCommandStatus(status) }]);

    expect(await run.exited).toBe(0);
    expect(run.out.stdout).toBe(`${command.commandId}\napplied\n`);
    expect(`${run.out.stdout}${run.out.stderr}`).not.toContain(OPERATOR_PASSWORD);
  });

  it('fails with the broker\'s authentication error, naming no password, when the password is wrong', async () => {
    const topics = await createCommandTopics(broker.bootstrap);
    const run = commandOverSaslSsl(['--topic', topics.commands, '--container', 'C07', '--gateway', 'ship-7', '--defrost'], WRONG_PASSWORD);
    const error = await run.exited.then(
      (code) => new Error(`expected a failure, got exit ${code}`),
      (e: unknown) => e,
    );
    const line = errorChain(error);
    expect(line).toMatch(/authentication failed/i);
    expect(line).not.toContain(WRONG_PASSWORD);
    expect(`${run.out.stdout}${run.out.stderr}`).not.toContain(WRONG_PASSWORD);
  });
});
