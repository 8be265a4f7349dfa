import { parseArgs } from 'node:util';
import type { Logger, ServiceName } from '@checkout-saga/shared/internal';
import type { DeadLetter, DeadLetterQueues } from './dead-letters.ts';
import { serviceNames } from './service-names.ts';

/*
 * The command line is checked before anything else is loaded: the kit (and with it fastify,
 * kysely, pg, …) takes a while to import, and `--help` or a typo should answer at once.
 */

export const usage = `usage: npm run dlq -- <command> [options]

commands:
  list [--service S] [--json]               one row per dead letter (--json: every field, as JSON)
  show <id> [--service S]                   its properties, headers and envelope, as JSON
  replay <id> | --all [--service S]         send back to the service's own queue with attempt 1,
                                            then remove from the dead-letter queue
  purge <id> | --all [--service S] --yes    remove for good; without --yes, list what would go

S is one of ${serviceNames.join(', ')}; <id> is the event id (the message's messageId).
Settings: RABBITMQ_URL and QUEUE_PREFIX as for the services, LOG_LEVEL for replay/purge log lines.
Exit codes: 0 done (or nothing to do), 1 failed, 2 usage error or purge without --yes, 78 bad setting.
`;

/** What a command line asks for, once it has been checked. */
export type Command =
  | { name: 'help' }
  | { name: 'list'; services: ServiceName[]; json: boolean }
  | { name: 'show'; services: ServiceName[]; id: string }
  | { name: 'replay'; services: ServiceName[]; target: Target }
  | { name: 'purge'; services: ServiceName[]; target: Target; yes: boolean };

export type Target = { all: true } | { all: false; id: string };

export class UsageError extends Error {
  override name = 'UsageError';
}

/** Reads the arguments after `npm run dlq --`; throws UsageError with the line to show above the usage. */
export function parseCommand(argv: readonly string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        service: { type: 'string', short: 's' },
        all: { type: 'boolean', default: false },
        yes: { type: 'boolean', short: 'y', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const [name, ...rest] = positionals;
  if (values.help || name === 'help') return { name: 'help' };
  if (name === undefined) throw new UsageError('a command is required');

  const service = values.service;
  if (service !== undefined && !(serviceNames as readonly string[]).includes(service)) {
    throw new UsageError(`--service must be one of ${serviceNames.join(', ')}, not ${JSON.stringify(service)}`);
  }
  const services = service === undefined ? [...serviceNames] : [service as ServiceName];
  const refuse = (option: string) => {
    throw new UsageError(`${name} does not take ${option}`);
  };
  const noMorePositionals = (allowed: number) => {
    if (rest.length > allowed) throw new UsageError(`unexpected argument ${JSON.stringify(rest[allowed])}`);
  };

  switch (name) {
    case 'list':
      noMorePositionals(0);
      if (values.all) refuse('--all');
      if (values.yes) refuse('--yes');
      return { name, services, json: values.json };
    case 'show': {
      noMorePositionals(1);
      if (values.all) refuse('--all');
      if (values.yes) refuse('--yes');
      if (values.json) refuse('--json (it always prints JSON)');
      const id = rest[0];
      if (!id) throw new UsageError('show needs the id of a dead letter');
      return { name, services, id };
    }
    case 'replay':
    case 'purge': {
      noMorePositionals(1);
      if (values.json) refuse('--json');
      if (name === 'replay' && values.yes) refuse('--yes');
      const id = rest[0];
      if (id !== undefined && values.all) throw new UsageError(`${name} takes an id or --all, not both`);
      if (id === undefined && !values.all) throw new UsageError(`${name} needs the id of a dead letter, or --all`);
      const target: Target = id === undefined ? { all: true } : { all: false, id };
      return name === 'replay' ? { name, services, target } : { name, services, target, yes: values.yes };
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(name)}`);
  }
}

export interface Output {
  out(text: string): void;
  err(text: string): void;
}

const processOutput: Output = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** Runs one command line and returns the exit code. */
export async function main(argv: readonly string[], env: Record<string, string | undefined> = process.env, io: Output = processOutput): Promise<number> {
  let command: Command;
  try {
    command = parseCommand(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`dlq: ${error.message}\n\n${usage}`);
    return 2;
  }
  if (command.name === 'help') {
    io.out(usage);
    return 0;
  }

  const [{ ConfigError, createLogger, loadConfig }, { DlqSettings }, { DeadLetterQueues }] = await Promise.all([
    import('@checkout-saga/shared/internal'),
    import('./settings.ts'),
    import('./dead-letters.ts'),
  ]);
  let config;
  try {
    config = loadConfig(DlqSettings, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    io.err(`configuration error: ${error.message}\n`);
    return 78; // EX_CONFIG, as the services
  }

  let queues: DeadLetterQueues;
  try {
    queues = await DeadLetterQueues.connect(config.RABBITMQ_URL, config.QUEUE_PREFIX);
  } catch (error) {
    io.err(`dlq: cannot connect to RabbitMQ: ${(error as Error).message}\n`);
    return 1;
  }
  try {
    // Each line is logged as the dead letter's service (its `service` field), by this tool (`component: "dlq"`),
    // the way the kit's consumer logs "message dead-lettered": grepping one service's logs for an id shows both.
    const loggers = new Map<ServiceName, Logger>();
    const logFor = (service: ServiceName) => {
      let logger = loggers.get(service);
      // Through the same output as the summary, so the summary stays the last line.
      if (!logger) loggers.set(service, (logger = createLogger(service, config.LOG_LEVEL, { write: (line) => io.out(line) }).child({ component: 'dlq' })));
      return logger;
    };
    return await run(command, queues, logFor, io);
  } catch (error) {
    io.err(`dlq: ${command.name} failed: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await queues.close();
  }
}

async function run(command: Exclude<Command, { name: 'help' }>, queues: DeadLetterQueues, logFor: (service: ServiceName) => Logger, io: Output): Promise<number> {
  const where = command.services.length === 1 ? ` in ${queues.deadLetterQueueOf(command.services[0]!)}` : '';
  if ((await queues.existing(command.services)).length === 0) {
    const missing = command.services.length === 1 ? `queue ${queues.deadLetterQueueOf(command.services[0]!)} does not exist` : `no queue named ${queues.queuePrefix}<service>.dlq exists`;
    io.err(`dlq: ${missing} (is QUEUE_PREFIX ${JSON.stringify(queues.queuePrefix)} right?)\n`);
  }

  switch (command.name) {
    case 'list': {
      const letters = await queues.list(command.services);
      if (command.json) io.out(`${JSON.stringify(letters.map(summary), null, 2)}\n`);
      else io.out(letters.length === 0 ? `no dead letters${where}\n` : table(letters));
      return 0;
    }
    case 'show': {
      const letters = (await queues.list(command.services)).filter((letter) => letter.id === command.id);
      if (letters.length === 0) {
        io.err(`dlq: no dead letter ${command.id}${where}\n`);
        return 1;
      }
      for (const letter of letters) io.out(`${JSON.stringify(details(letter), null, 2)}\n`);
      return 0;
    }
    case 'replay': {
      const select = selector(command.target);
      const replayed = await queues.replay(command.services, select, (letter, target) => {
        logFor(letter.service).info({ id: letter.id, type: letter.type, reason: letter.reason, queue: target }, 'dead letter replayed');
      });
      if (replayed.length === 0) {
        io.out(command.target.all ? `no dead letters${where}; nothing replayed\n` : `dead letter ${command.target.id} not found${where} (already replayed or purged?); nothing replayed\n`);
      } else {
        io.out(`replayed ${count(replayed.length)}\n`);
      }
      return 0;
    }
    case 'purge': {
      const select = selector(command.target);
      if (!command.yes) {
        const doomed = (await queues.list(command.services)).filter(select);
        if (doomed.length === 0) {
          io.out(command.target.all ? `no dead letters${where}; nothing to remove\n` : `dead letter ${command.target.id} not found${where}; nothing to remove\n`);
          return 0;
        }
        io.out(`would remove ${count(doomed.length)}:\n${table(doomed)}nothing removed: run again with --yes to remove ${doomed.length === 1 ? 'it' : 'them'}\n`);
        return 2;
      }
      const purged = await queues.purge(command.services, select, (letter) => {
        logFor(letter.service).info({ id: letter.id, type: letter.type, reason: letter.reason, queue: letter.queue }, 'dead letter purged');
      });
      if (purged.length === 0) {
        io.out(command.target.all ? `no dead letters${where}; nothing removed\n` : `dead letter ${command.target.id} not found${where}; nothing removed\n`);
      } else {
        io.out(`removed ${count(purged.length)}\n`);
      }
      return 0;
    }
  }
}

function selector(target: Target): (letter: DeadLetter) => boolean {
  return target.all ? () => true : (letter) => letter.id === target.id;
}

const count = (n: number) => `${n} dead letter${n === 1 ? '' : 's'}`;

/** A dead letter as `list --json` prints it. */
export function summary(letter: DeadLetter) {
  return {
    id: letter.id,
    service: letter.service,
    type: letter.type,
    routingKey: letter.routingKey,
    exchange: letter.exchange,
    reason: letter.reason,
    handler: letter.handler,
    attempts: letter.attempts,
    firstFailedAt: letter.firstFailedAt,
    deadLetteredAt: letter.deadLetteredAt,
  };
}

/** A dead letter as `show` prints it: where it is, its AMQP properties and headers, and its body (parsed when it is JSON). */
function details(letter: DeadLetter) {
  const { envelope } = letter;
  return {
    id: letter.id,
    service: letter.service,
    queue: letter.queue,
    properties: letter.properties,
    headers: letter.headers,
    ...(envelope ? { envelope } : { body: letter.body.toString('utf8') }),
  };
}

const REASON_WIDTH = 100;

function table(letters: readonly DeadLetter[]): string {
  const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();
  const rows = letters.map((letter) => {
    const reason = oneLine(letter.reason) || '-';
    return [
      letter.id,
      letter.service,
      letter.type ?? '-',
      letter.routingKey ?? '-',
      letter.attempts === null ? '-' : String(letter.attempts),
      letter.firstFailedAt ?? '-',
      reason.length > REASON_WIDTH ? `${reason.slice(0, REASON_WIDTH - 1)}…` : reason,
    ].map((cell) => oneLine(cell) || '-');
  });
  const header = ['ID', 'SERVICE', 'TYPE', 'ROUTING KEY', 'ATTEMPTS', 'FIRST FAILED AT', 'REASON'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => `${cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ')}\n`;
  return [header, ...rows].map(line).join('');
}
