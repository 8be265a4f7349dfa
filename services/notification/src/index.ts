export { notificationService } from './service.ts';
export { notificationSettings, type NotificationConfig } from './settings.ts';
export { composeEmail, messageIdOf, type Email } from './domain/email.ts';
