import { messagingSettings } from '@checkout-saga/shared';
import { Type, type Static, type TObject } from 'typebox';

/** Every environment variable the inventory service reads: the kit's shared ones plus its own. */
export const inventorySettings = {
  ...messagingSettings('inventory', 3002),
  INVENTORY_FAILURE_RATE: Type.Number({
    default: 0,
    minimum: 0,
    maximum: 1,
    description: 'the share of reservations that would succeed which fail anyway (reason "simulated"), from 0 to 1',
  }),
  ADMIN_TOKEN: Type.Optional(
    Type.String({ minLength: 8, maxLength: 512, secret: true, description: 'a secret of 8 or more characters that PUT /products/:sku must present as "Authorization: Bearer <token>"; unset, PUT is open' }),
  ),
};

export type InventoryConfig = Static<TObject<typeof inventorySettings>>;
