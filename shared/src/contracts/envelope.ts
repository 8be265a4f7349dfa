import { Type, type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { v7 as uuidv7 } from 'uuid';
import { eventCatalogue, isEventType, type EventPayload, type EventType } from './events.ts';

/** The header every message carries, whatever its type; `payload` is checked against the type's own schema. */
const Uuid = Type.String({ pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' });
export const EnvelopeHeader = Type.Object({
  eventId: Uuid,
  type: Type.String({ minLength: 1, maxLength: 64 }),
  sagaId: Uuid,
  orderId: Uuid,
  timestamp: Type.String({ minLength: 20, maxLength: 40 }),
  version: Type.Literal(1),
  payload: Type.Object({}),
});

export type Envelope<T extends EventType = EventType> = {
  [K in T]: Omit<Static<typeof EnvelopeHeader>, 'type' | 'payload'> & { type: K; payload: EventPayload<K> };
}[T];

const headerValidator = Compile(EnvelopeHeader);
const payloadValidators = Object.fromEntries(
  Object.entries(eventCatalogue).map(([type, entry]) => [type, Compile(entry.payload)]),
) as Record<EventType, ReturnType<typeof Compile>>;

export type ParseResult = { ok: true; envelope: Envelope } | { ok: false; reason: string };

/** Turns a message body into a typed envelope, or says precisely why it is not one. */
export function parseEnvelope(body: Buffer | string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (error) {
    return { ok: false, reason: `body is not JSON: ${(error as Error).message}` };
  }
  if (!headerValidator.Check(value)) return { ok: false, reason: `invalid envelope: ${describe(headerValidator.Errors(value))}` };
  const { type, payload } = value;
  if (!isEventType(type)) return { ok: false, reason: `unknown event type ${JSON.stringify(type)}` };
  const validator = payloadValidators[type];
  if (!validator.Check(payload)) return { ok: false, reason: `invalid ${type} payload: ${describe(validator.Errors(payload))}` };
  return { ok: true, envelope: value as Envelope };
}

function describe(errors: { instancePath: string; message: string }[]): string {
  return errors
    .slice(0, 3)
    .map((error) => `${error.instancePath || '/'} ${error.message}`)
    .join('; ');
}

export interface Causation {
  sagaId: string;
  orderId: string;
}

/** A new event of one saga: a fresh time-ordered id (uuid v7, so outbox and history sort by it) and the current time. */
export function newEvent<T extends EventType>(type: T, saga: Causation, payload: EventPayload<T>, now = new Date()): Envelope<T> {
  return {
    eventId: uuidv7(),
    type,
    sagaId: saga.sagaId,
    orderId: saga.orderId,
    timestamp: now.toISOString(),
    version: 1,
    payload,
  } as Envelope<T>;
}
