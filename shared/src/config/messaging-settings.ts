import { Type, type Static } from 'typebox';
import { tracingSettings } from '../tracing/settings.ts';
import { ConfigError } from './load-config.ts';

export type ServiceName = 'order' | 'payment' | 'inventory' | 'notification';

const int = (defaultValue: number, minimum: number, description: string, maximum?: number) =>
  Type.Integer({ default: defaultValue, minimum, ...(maximum === undefined ? {} : { maximum }), description });

/**
 * The settings every service shares, as environment variables. Defaults point at PostgreSQL
 * and RabbitMQ on localhost so `npm start` needs no configuration; each service's database
 * defaults to its own name so the four never share one.
 */
export function messagingSettings(service: ServiceName, defaultPort: number) {
  return {
    DATABASE_URL: Type.String({
      default: `postgres://postgres@127.0.0.1:5432/checkout_${service}`,
      pattern: '^postgres(ql)?://',
      format: 'url',
      secret: true,
      description: "a PostgreSQL URL such as postgres://user:password@host:5432/database (this service's own database)",
    }),
    DATABASE_POOL_SIZE: int(10, 1, 'a pool size from 1 to 200', 200),
    // A list in the one variable (not RABBITMQ_URLS) so every deployment that sets RABBITMQ_URL today keeps working unchanged.
    RABBITMQ_URL: Type.String({
      default: 'amqp://guest:guest@127.0.0.1:5672',
      pattern: '^\\s*amqps?://[^,\\s]+(\\s*,\\s*amqps?://[^,\\s]+)*\\s*$',
      description: 'an AMQP URL such as amqp://user:password@host:5672, or the nodes of one cluster separated by commas',
    }),
    QUORUM_INITIAL_GROUP_SIZE: int(
      0,
      0,
      "replicas each new quorum queue gets, such as 3 for a three-node cluster, or 0 for the broker's default (3 on RabbitMQ 3.10 and 4)",
      99,
    ),
    ORDER_EXCHANGE: Type.String({ default: 'order.topic', minLength: 1, maxLength: 200, description: 'the name of the topic exchange all saga events travel on' }),
    QUEUE_PREFIX: Type.String({ default: 'checkout.', maxLength: 100, description: "a prefix for this deployment's queue names, such as checkout." }),
    PORT: int(defaultPort, 0, 'a TCP port from 0 to 65535', 65535),
    // Loopback by default: a developer's `npm start` must not expose the unauthenticated API to the
    // network; containers set 0.0.0.0 (docker-compose.yml) and are published on loopback.
    HOST: Type.String({ default: '127.0.0.1', minLength: 1, description: 'the address the HTTP server listens on, such as 127.0.0.1 or 0.0.0.0' }),
    LOG_LEVEL: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
      { default: 'info', description: 'one of fatal, error, warn, info, debug, trace, silent' },
    ),
    OUTBOX_POLL_INTERVAL_MS: int(1000, 10, 'milliseconds between outbox polls, at least 10'),
    OUTBOX_BATCH_SIZE: int(500, 1, 'rows the relay claims per batch, 1 to 5000', 5000),
    OUTBOX_NOTIFY: Type.Boolean({ default: false, description: 'true to also wake relays by LISTEN/NOTIFY (costs commit throughput), else false' }),
    OUTBOX_CLAIM_MS: int(10_000, 100, "milliseconds a committing process keeps its new outbox rows to itself before any relay may publish them, at least 100"),
    OUTBOX_CONFIRM_TIMEOUT_MS: int(5000, 100, 'milliseconds to wait for a publish confirm, at least 100'),
    OUTBOX_RETENTION_MS: int(86_400_000, 0, 'milliseconds to keep published outbox rows'),
    INBOX_RETENTION_MS: int(7 * 86_400_000, 60_000, 'milliseconds to keep processed_events rows; longer than the whole retry schedule'),
    MAX_DELIVERY_ATTEMPTS: int(5, 1, 'attempts before a failing message is dead-lettered, 1 to 20', 20),
    RETRY_BASE_DELAY_MS: int(1000, 10, 'milliseconds before the first retry (doubled for each further one), at least 10'),
    QUEUE_DELIVERY_LIMIT: int(
      20,
      1,
      "deliveries of one message from a service's queue without an ack (its process died holding it) before the broker moves it to the .dlq, 1 to 1000; 20 is RabbitMQ 4's own default",
      1000,
    ),
    CONSUMER_PREFETCH: int(256, 1, 'messages a consumer holds unacknowledged at once, 1 to 1000', 1000),
    CONSUMER_BATCH_SIZE: int(64, 1, 'messages applied in one transaction, 1 to 1000', 1000),
    SHUTDOWN_TIMEOUT_MS: int(10_000, 100, 'milliseconds graceful shutdown may take before the process exits anyway'),
    ...tracingSettings(service),
  };
}

export type MessagingSettings = Static<ReturnType<typeof Type.Object<ReturnType<typeof messagingSettings>>>>;

/** The addresses in RABBITMQ_URL, in the order given: one, or several nodes of one cluster. */
export function brokerUrls(setting: string): string[] {
  return setting
    .split(',')
    .map((url) => url.trim())
    .filter((url) => url !== '');
}

/** The delay before retry n (1-based): RETRY_BASE_DELAY_MS doubled for each further attempt. */
export function retryDelays(settings: Pick<MessagingSettings, 'MAX_DELIVERY_ATTEMPTS' | 'RETRY_BASE_DELAY_MS'>): number[] {
  return Array.from({ length: settings.MAX_DELIVERY_ATTEMPTS - 1 }, (_, index) => settings.RETRY_BASE_DELAY_MS * 2 ** index);
}

/** Checks between settings that a schema of single variables cannot express. */
export function checkMessagingSettings(settings: MessagingSettings): void {
  const window = retryDelays(settings).reduce((sum, delay) => sum + delay, 0);
  if (settings.INBOX_RETENTION_MS <= window * 2) {
    throw new ConfigError(
      `INBOX_RETENTION_MS is ${settings.INBOX_RETENTION_MS}: expected more than twice the retry schedule (${window} ms), or a redelivered message could be applied twice`,
    );
  }
}
