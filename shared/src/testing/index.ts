export { testServers } from './servers';
export type { TestServers } from './servers';
export { testRunId, createTestDatabase, testNames, deleteBrokerObjects, deleteTopology } from './isolation';
export type { TestDatabase, TestNames } from './isolation';
export { startTcpProxy } from './tcp-proxy';
export type { TcpProxy } from './tcp-proxy';
export { waitFor } from './wait-for';
export type { WaitForOptions } from './wait-for';
