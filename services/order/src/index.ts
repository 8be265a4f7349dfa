export { orderService } from './service.ts';
export { orderSettings, type OrderConfig } from './settings.ts';
export type { IdempotencyKeysTable, OrdersTable, OrderStatus, OrderTables, SagaHistoryTable, SagasTable } from './db.ts';
export { decide, begin, isTerminal, sagaStates, terminalStates, type Decision, type SagaInput, type SagaSnapshot, type SagaState } from './saga/decide.ts';
export { TimeoutChecker, type TimeoutCheckerOptions } from './timeout-checker.ts';
