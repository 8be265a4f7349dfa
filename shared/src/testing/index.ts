export { testServers } from './servers';
export type { TestServers } from './servers';
export { testRunId, createTestDatabase, testNames, deleteBrokerObjects, deleteTopology } from './isolation';
export type { TestDatabase, TestNames } from './isolation';
export { startTcpProxy } from './tcp-proxy';
export type { TcpProxy } from './tcp-proxy';
export { waitFor } from './wait-for';
export type { WaitForOptions } from './wait-for';
export { startTestService, publishEnvelopes, emitted, applied, duplicates } from './service-harness';
export type { ServiceHarness, ServiceHarnessOptions } from './service-harness';
export { startSmtpSink } from './smtp-sink';
export type { ReceivedMail, SmtpSink } from './smtp-sink';
export { startOtlpReceiver } from './otlp-receiver';
export type { OtlpReceiver, ReceivedSpan } from './otlp-receiver';
// The names KIT_WITHOUT takes, for the benches and tests that switch mechanisms off.
export { MECHANISMS } from '../runtime/mechanisms';
export type { Mechanism } from '../runtime/mechanisms';
