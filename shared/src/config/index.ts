export { ConfigError, loadConfig } from './load-config.ts';
export { brokerUrls, checkMessagingSettings, messagingSettings, retryDelays, type MessagingSettings, type ServiceName } from './messaging-settings.ts';
