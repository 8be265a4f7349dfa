import { Type, type TObject, type TProperties, type Static } from 'typebox';
import { ConfigError, loadConfig } from '../config/load-config.ts';
import { checkMessagingSettings, type MessagingSettings } from '../config/messaging-settings.ts';
import type { MessagingTables } from '../db/messaging-tables.ts';
import { mechanismsOff } from './mechanisms.ts';
import { startService, type ServiceDefinition } from './service.ts';

/** Reads a service's settings or ends the process with the one line that says what is wrong. */
export function configOrExit<P extends TProperties>(properties: P, env: Record<string, string | undefined> = process.env): Static<TObject<P>> {
  try {
    const config = loadConfig(Type.Object(properties), env);
    checkMessagingSettings(config as unknown as MessagingSettings);
    mechanismsOff(env.KIT_WITHOUT);
    return config;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`configuration error: ${error.message}\n`);
    process.exit(78); // EX_CONFIG
  }
}

/**
 * A service's whole life as a process: start, then on SIGTERM or SIGINT shut down
 * gracefully within SHUTDOWN_TIMEOUT_MS. A failure to start is one log line and exit 1.
 */
export async function runService<DB extends MessagingTables, C extends MessagingSettings>(definition: ServiceDefinition<DB, C>, config: C): Promise<void> {
  let service;
  try {
    service = await startService(definition, config);
  } catch (error) {
    process.stderr.write(`${definition.name} failed to start: ${(error as Error).message}\n`);
    process.exit(1);
  }
  const shutdown = (signal: string) => {
    service.logger.info({ signal }, 'signal received');
    const force = setTimeout(() => {
      service.logger.error('graceful shutdown timed out; exiting');
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    force.unref();
    service.stop().then(
      () => process.exit(0),
      (error: Error) => {
        service.logger.error({ err: error.message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
