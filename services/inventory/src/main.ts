import { configOrExit, runService } from '@checkout-saga/shared';
import { inventoryService } from './service.ts';
import { inventorySettings } from './settings.ts';

await runService(inventoryService, configOrExit(inventorySettings));
