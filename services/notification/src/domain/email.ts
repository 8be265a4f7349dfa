import { formatMinor, type CancellationReason, type Envelope, type OrderLine } from '@checkout-saga/shared';

/** One email to a customer, ready for any transport. */
export interface Email {
  to: string;
  subject: string;
  text: string;
  /** Derived from the event id, so a message delivered twice yields two copies a mail system can recognise as one. */
  messageId: string;
}

/** Why an order was cancelled: short for the subject, a sentence for the body. */
const subjectReason: Record<CancellationReason, string> = {
  payment_failed: 'payment failed',
  inventory_failed: 'out of stock or inventory problem',
  timeout: 'timed out',
};

const why: Record<CancellationReason, string> = {
  payment_failed: 'the payment failed',
  inventory_failed: 'items were out of stock or there was an inventory problem',
  timeout: 'it timed out before it could be completed',
};

export function messageIdOf(eventId: string): string {
  return `<${eventId}@checkout-saga>`;
}

/** The email that tells the customer their order is confirmed or cancelled (and why). */
export function composeEmail(event: Envelope<'OrderConfirmed' | 'OrderCancelled'>): Email {
  const { customerEmail, items, amountMinor, currency } = event.payload;
  const amount = `${formatMinor(amountMinor)} ${currency}`;
  const details = [`Order: ${event.orderId}`, `Amount: ${amount}`, 'Items:', ...items.map(line)];
  if (event.type === 'OrderConfirmed') {
    return {
      to: customerEmail,
      subject: `Your order ${event.orderId} is confirmed`,
      text: ['Thank you! Your order is confirmed and your payment has been taken.', '', ...details, ''].join('\n'),
      messageId: messageIdOf(event.eventId),
    };
  }
  const reason = event.payload.reason;
  const refund = reason === 'payment_failed' ? 'You have not been charged.' : 'Any amount charged has been or will be refunded in full.';
  return {
    to: customerEmail,
    subject: `Your order ${event.orderId} was cancelled: ${subjectReason[reason]}`,
    text: [`We are sorry: your order was cancelled because ${why[reason]}.`, refund, '', ...details, ''].join('\n'),
    messageId: messageIdOf(event.eventId),
  };
}

function line({ sku, qty }: OrderLine): string {
  return `  ${qty} x ${sku}`;
}
