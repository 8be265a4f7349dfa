/**
 * Contract: a bad setting is reported as one line that names the environment variable,
 * what it was and what was expected. `loadConfig` throws it as a ConfigError;
 * `configOrExit` (what every service's main calls) prints it as the only line on stderr
 * and exits with 78 (EX_CONFIG), before connecting to anything.
 */
import { Type } from 'typebox';
import { describe, expect, test, vi } from 'vitest';
import { brokerUrls, checkMessagingSettings, ConfigError, configOrExit, loadConfig, messagingSettings } from '../src/internal.ts';
import { runFixture } from './support/processes.ts';

const badSettings: { variable: string; env: Record<string, string>; says: string }[] = [
  { variable: 'DATABASE_URL', env: { DATABASE_URL: 'mysql://db/orders' }, says: 'DATABASE_URL is not valid (its value is not shown: it may hold a password or token): expected a PostgreSQL URL' },
  { variable: 'RABBITMQ_URL', env: { RABBITMQ_URL: 'http://rabbit' }, says: 'RABBITMQ_URL is not valid (its value is not shown: it may hold a password or token): expected an AMQP URL' },
  { variable: 'RABBITMQ_URL', env: { RABBITMQ_URL: 'amqp://u:secret@rabbit-1:5672,rabbit-2:5672' }, says: 'RABBITMQ_URL is not valid (its value is not shown: it may hold a password or token): expected an AMQP URL such as amqp://user:password@host:5672, or the nodes of one cluster separated by commas' },
  { variable: 'QUORUM_INITIAL_GROUP_SIZE', env: { QUORUM_INITIAL_GROUP_SIZE: 'all' }, says: 'QUORUM_INITIAL_GROUP_SIZE is "all": expected replicas each new quorum queue gets' },
  { variable: 'CONSUMER_PREFETCH', env: { CONSUMER_PREFETCH: '0' }, says: 'CONSUMER_PREFETCH is "0": expected messages a consumer holds unacknowledged at once, 1 to 1000' },
  { variable: 'OUTBOX_POLL_INTERVAL_MS', env: { OUTBOX_POLL_INTERVAL_MS: 'fast' }, says: 'OUTBOX_POLL_INTERVAL_MS is "fast": expected milliseconds between outbox polls' },
  { variable: 'OUTBOX_NOTIFY', env: { OUTBOX_NOTIFY: 'yes' }, says: 'OUTBOX_NOTIFY is "yes": expected true to also wake relays' },
  { variable: 'LOG_LEVEL', env: { LOG_LEVEL: 'loud' }, says: 'LOG_LEVEL is "loud": expected one of fatal, error, warn, info, debug, trace, silent' },
  { variable: 'OTEL_EXPORTER_OTLP_PROTOCOL', env: { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, says: 'OTEL_EXPORTER_OTLP_PROTOCOL is "grpc": expected http/protobuf or http/json' },
  { variable: 'OTEL_EXPORTER_OTLP_ENDPOINT', env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'jaeger:4318' }, says: 'OTEL_EXPORTER_OTLP_ENDPOINT is not valid (its value is not shown: it may hold a password or token): expected the OTLP/HTTP base URL' },
  { variable: 'OTEL_TRACES_SAMPLER', env: { OTEL_TRACES_SAMPLER: 'sometimes' }, says: 'OTEL_TRACES_SAMPLER is "sometimes": expected always_on, always_off, traceidratio' },
  { variable: 'OTEL_TRACES_SAMPLER_ARG', env: { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '10%' }, says: 'OTEL_TRACES_SAMPLER_ARG is "10%": expected the ratio of traces sampled' },
  { variable: 'INBOX_RETENTION_MS', env: { RETRY_BASE_DELAY_MS: '20000', INBOX_RETENTION_MS: '60000' }, says: 'INBOX_RETENTION_MS is 60000: expected more than twice the retry schedule' },
];

const messaging = Type.Object(messagingSettings('payment', 3001));

describe('loadConfig', () => {
  test.each(badSettings)('names $variable when it is bad', ({ env, says }) => {
    const load = () => checkMessagingSettings(loadConfig(messaging, env));
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(says);
  });

  test('names a required variable that is missing, with its description', () => {
    const schema = Type.Object({ ADMIN_TOKEN: Type.String({ minLength: 1, description: 'the bearer token admins send' }) });
    expect(() => loadConfig(schema, {})).toThrow(new ConfigError('ADMIN_TOKEN is missing: expected the bearer token admins send'));
    expect(() => loadConfig(schema, { ADMIN_TOKEN: '' })).toThrow('ADMIN_TOKEN is missing');
  });

  test('takes several broker addresses separated by commas, in the order given', () => {
    const config = loadConfig(messaging, { RABBITMQ_URL: ' amqp://u:p@rabbit-1:5672 ,amqp://u:p@rabbit-2:5672, amqps://u:p@rabbit-3 ' });
    expect(brokerUrls(config.RABBITMQ_URL)).toEqual(['amqp://u:p@rabbit-1:5672', 'amqp://u:p@rabbit-2:5672', 'amqps://u:p@rabbit-3']);
    expect(brokerUrls(loadConfig(messaging, {}).RABBITMQ_URL)).toEqual(['amqp://guest:guest@127.0.0.1:5672']);
  });

  test('fills in defaults and converts strings to the declared types', () => {
    const config = loadConfig(messaging, { OUTBOX_NOTIFY: 'true', CONSUMER_PREFETCH: '7', PORT: '' });
    expect(config).toMatchObject({ OUTBOX_NOTIFY: true, CONSUMER_PREFETCH: 7, PORT: 3001, OUTBOX_POLL_INTERVAL_MS: 1000, ORDER_EXCHANGE: 'order.topic' });
  });
});

describe('configOrExit', () => {
  class Exited extends Error {
    constructor(readonly code: number | string | null | undefined) {
      super(`process.exit(${code})`);
    }
  }

  /** Calls configOrExit in this process, with exit and stderr intercepted. */
  function configOrExitHere(env: Record<string, string>) {
    const stderr: string[] = [];
    const exit = vi.spyOn(process, 'exit').mockImplementation((code) => {
      throw new Exited(code);
    });
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      stderr.push(String(chunk));
      return true;
    });
    try {
      configOrExit(messagingSettings('payment', 3001), env);
      return { code: undefined, stderr: stderr.join('') };
    } catch (error) {
      if (!(error instanceof Exited)) throw error;
      return { code: error.code, stderr: stderr.join('') };
    } finally {
      exit.mockRestore();
      write.mockRestore();
    }
  }

  test.each(badSettings)('exits 78 with one line on stderr naming $variable', ({ variable, env, says }) => {
    const { code, stderr } = configOrExitHere(env);
    expect(code).toBe(78);
    expect(stderr).toMatch(new RegExp(`^configuration error: ${variable} [^\\n]*\\n$`));
    expect(stderr).toContain(says);
  });

  test('returns the settings when every one is good', () => {
    expect(configOrExitHere({ OUTBOX_NOTIFY: 'true' })).toEqual({ code: undefined, stderr: '' });
  });

  // A real process, started the way a service starts: what an operator (or an orchestrator) sees.
  test('ends a service process with exit code 78 and one stderr line naming the variable', async () => {
    const cases = [badSettings.find((setting) => setting.variable === 'OUTBOX_POLL_INTERVAL_MS')!, badSettings.find((setting) => setting.variable === 'INBOX_RETENTION_MS')!];
    const results = await Promise.all(cases.map((setting) => runFixture('check-config.ts', setting.env)));
    results.forEach((result, index) => {
      const { variable, says } = cases[index]!;
      expect(result.code, variable).toBe(78);
      expect(result.stdout, variable).toBe('');
      const lines = result.stderr.split('\n').filter((line) => line !== '');
      expect(lines, variable).toHaveLength(1);
      expect(lines[0], variable).toMatch(new RegExp(`^configuration error: ${variable} `));
      expect(lines[0], variable).toContain(says);
    });
  });
});
