export { inventoryService } from './service.ts';
export { inventorySettings, type InventoryConfig } from './settings.ts';
export type { InventoryTables, NewReservation, Product, ProductsTable, Reservation, ReservationsTable } from './db.ts';
export type { ReservationStatus } from './domain/reservation.ts';
export { demoProducts, seedProducts } from './seed-products.ts';
