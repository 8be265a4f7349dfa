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

/**
 * A UUID as PostgreSQL writes it back: lower case, hyphenated 8-4-4-4-12. UUIDs are
 * case-insensitive on input (RFC 4122) and PostgreSQL also accepts braces and other hyphen
 * placements, so any of those spellings maps to the one text key; anything else is returned
 * as given (PostgreSQL would refuse it).
 */
export function canonicalUuid(value: string): string {
  const digits = value.replace(/[{}-]/g, '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(digits)) return value;
  return `${digits.slice(0, 8)}-${digits.slice(8, 12)}-${digits.slice(12, 16)}-${digits.slice(16, 20)}-${digits.slice(20)}`;
}

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
  return { ok: true, envelope: withCanonicalIds(value as Envelope) };
}

/** The payload fields of each type that hold a UUID, read off the catalogue's schemas. */
const payloadUuidFields = Object.fromEntries(
  Object.entries(eventCatalogue).map(([type, entry]) => [
    type,
    Object.entries(entry.payload.properties as Record<string, { format?: string }>)
      .filter(([, schema]) => schema.format === 'uuid')
      .map(([field]) => field),
  ]),
) as Record<EventType, string[]>;

/**
 * The envelope with every UUID it carries in one spelling, so the ids an event arrived with
 * (in capitals, from some producers) mean the same thing in every key, log line, Message-ID
 * and event it leads to as the ids the services generate themselves.
 */
function withCanonicalIds(envelope: Envelope): Envelope {
  const payload: Record<string, unknown> = { ...envelope.payload };
  for (const field of payloadUuidFields[envelope.type]) {
    if (typeof payload[field] === 'string') payload[field] = canonicalUuid(payload[field]);
  }
  return {
    ...envelope,
    eventId: canonicalUuid(envelope.eventId),
    sagaId: canonicalUuid(envelope.sagaId),
    orderId: canonicalUuid(envelope.orderId),
    payload,
  } as Envelope;
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
