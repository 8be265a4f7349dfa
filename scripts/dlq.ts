/**
 * `npm run dlq -- <command>`: list, show, replay and purge the messages of the services'
 * dead-letter queues. See `npm run dlq -- --help` and docs/reliability.md, "Dead letters".
 */
import { main } from './dlq/cli.ts';

process.exitCode = await main(process.argv.slice(2));
