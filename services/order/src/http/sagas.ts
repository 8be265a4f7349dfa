import { CancellationReason, errorResponses, HttpError, type HttpApp, type ServiceContext } from '@checkout-saga/shared';
import { Type } from 'typebox';
import type { OrderTables } from '../db.ts';
import { sagaStates } from '../saga/decide.ts';
import type { OrderConfig } from '../settings.ts';

const SagaParams = Type.Object({ sagaId: Type.String({ format: 'uuid', examples: ['01930f6e-5a2b-7c3d-8e4f-0123456789ac'] }) });

const SagaState = Type.Unsafe<(typeof sagaStates)[number]>({ type: 'string', enum: [...sagaStates] });
const SagaView = Type.Object(
  {
    sagaId: Type.String({ format: 'uuid' }),
    orderId: Type.String({ format: 'uuid' }),
    state: SagaState,
    reason: Type.Union([CancellationReason, Type.Null()]),
    timeoutAt: Type.String({ format: 'date-time' }),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
    history: Type.Array(
      Type.Object(
        {
          type: Type.String({ description: 'The event consumed or emitted, or SagaTimedOut' }),
          eventId: Type.String({ format: 'uuid' }),
          at: Type.String({ format: 'date-time' }),
          fromState: Type.Union([SagaState, Type.Null()]),
          toState: SagaState,
          compensation: Type.Boolean(),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, description: 'The saga and every event it consumed or emitted, in order' },
);

/** GET /sagas/:sagaId: the saga and every event it consumed or emitted, in order. */
export function sagaRoutes(app: HttpApp, { db }: ServiceContext<OrderTables, OrderConfig>): void {
  app.get('/sagas/:sagaId', { schema: { summary: 'A saga and its history', params: SagaParams, response: { 200: SagaView, ...errorResponses({ 404: 'No such saga' }) } } }, async (request) => {
    const { sagaId } = request.params;
    // One snapshot for both reads, so the state and the history always agree.
    const found = await db
      .transaction()
      .setIsolationLevel('repeatable read')
      .setAccessMode('read only')
      .execute(async (trx) => {
        const saga = await trx.selectFrom('sagas').selectAll().where('saga_id', '=', sagaId).executeTakeFirst();
        if (!saga) return undefined;
        const history = await trx
          .selectFrom('saga_history')
          .select(['type', 'event_id', 'at', 'from_state', 'to_state', 'compensation'])
          .where('saga_id', '=', sagaId)
          .orderBy('at')
          .orderBy('id')
          .execute();
        return { saga, history };
      });
    if (!found) throw new HttpError(404, 'not_found', `no saga ${sagaId}`);
    const { saga, history } = found;
    return {
      sagaId: saga.saga_id,
      orderId: saga.order_id,
      state: saga.state,
      reason: saga.reason,
      timeoutAt: saga.timeout_at.toISOString(),
      createdAt: saga.created_at.toISOString(),
      updatedAt: saga.updated_at.toISOString(),
      history: history.map((entry) => ({
        type: entry.type,
        eventId: entry.event_id,
        at: entry.at.toISOString(),
        fromState: entry.from_state,
        toState: entry.to_state,
        compensation: entry.compensation,
      })),
    };
  });
}
