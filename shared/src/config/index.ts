export { ConfigError, loadConfig } from './load-config.ts';
export { checkMessagingSettings, messagingSettings, retryDelays, type MessagingSettings, type ServiceName } from './messaging-settings.ts';
