import { configOrExit, runService } from '@checkout-saga/shared';
import { paymentService } from './service.ts';
import { paymentSettings } from './settings.ts';

await runService(paymentService, configOrExit(paymentSettings));
