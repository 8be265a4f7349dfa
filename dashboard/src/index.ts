export { dashboardRoutes } from './routes.ts';
export type { DashboardSource, OrderPresentation } from './source.ts';
export { dashboardSettings, type DashboardConfig } from './settings.ts';
export type * from './wire.ts';
