/*
 * A three-node RabbitMQ cluster from the machine's installation, as the fault suite starts
 * it, kept until Ctrl-C (then removed): for running the services or the bench against a
 * cluster by hand.
 *
 *   npx tsx test/faults/support/run-cluster.ts
 *   RABBITMQ_URL=<the printed list> QUORUM_INITIAL_GROUP_SIZE=3 npm run bench
 */
import { startRabbitCluster } from './cluster.ts';

const began = Date.now();
const cluster = await startRabbitCluster('by-hand');
console.log(`three nodes up and clustered in ${((Date.now() - began) / 1000).toFixed(1)} s; Ctrl-C removes them`);
console.log(`RABBITMQ_URL=${cluster.rabbitmqUrl}`);
for (const node of cluster.nodes) console.log(`  node ${node.index}: ${node.name} on 127.0.0.1:${node.amqpPort}`);
const remove = () => void cluster.remove().then(() => process.exit(0));
process.once('SIGINT', remove);
process.once('SIGTERM', remove);
