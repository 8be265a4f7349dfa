import { startTestService, type ServiceHarness, type ServiceHarnessOptions } from '@checkout-saga/shared/testing';
import { inventoryService, inventorySettings, type InventoryTables } from '../src/index.ts';

export { applied, duplicates, emitted } from '@checkout-saga/shared/testing';
export type InventoryHarness = ServiceHarness<InventoryTables>;

/** Inventory instances on a database and broker names of their own (see `startTestService`). */
export const startInventory = (label: string, options: Omit<ServiceHarnessOptions, 'label'> = {}) => startTestService(inventoryService, inventorySettings, { ...options, label });
