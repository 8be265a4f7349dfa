import { configOrExit, runService } from '@checkout-saga/shared';
import { orderService } from './service.ts';
import { orderSettings } from './settings.ts';

await runService(orderService, configOrExit(orderSettings));
