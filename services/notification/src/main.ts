import { configOrExit, runService } from '@checkout-saga/shared';
import { notificationService } from './service.ts';
import { notificationSettings } from './settings.ts';

await runService(notificationService, configOrExit(notificationSettings));
