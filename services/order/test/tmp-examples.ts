import { startOrderHarness, orderBody, postOrder, getJson } from './support.ts';
const h = await startOrderHarness('examples');
try {
  const show = async (label: string, p: Promise<unknown>) => console.log(`### ${label}\n${JSON.stringify(await p)}`);
  const a = await postOrder(h.url, { customerId: 'c-42', customerEmail: 'ada@example.com', items: [{ sku: 'BOOK-1', qty: 2 }, { sku: 'PEN-7', qty: 1 }], amount: '125.50', currency: 'EUR' }, { 'idempotency-key': 'k-1' });
  console.log('### POST', a.status, JSON.stringify(a.body));
  const r = await postOrder(h.url, { customerId: 'c-42', customerEmail: 'ada@example.com', items: [{ sku: 'BOOK-1', qty: 2 }, { sku: 'PEN-7', qty: 1 }], amount: 125.5, currency: 'EUR' }, { 'idempotency-key': 'k-1' });
  console.log('### replay', r.status, r.headers.get('idempotent-replayed'), JSON.stringify(r.body));
  await show('409', postOrder(h.url, orderBody({ amount: 1 }), { 'idempotency-key': 'k-1' }));
  await show('GET order', getJson(`${h.url}/orders/${a.body.orderId}`));
  await show('GET saga', getJson(`${h.url}/sagas/${a.body.sagaId}`));
  await show('list', getJson(`${h.url}/orders?status=PENDING&limit=1`));
  for (const [n, b] of [['json', '{"a":'], ['array', '[1]'], ['missing', orderBody({ customerEmail: undefined })], ['qty0', orderBody({ items: [{ sku: 'A', qty: 0 }] })], ['neg', orderBody({ amount: -1 })], ['3dec', orderBody({ amount: '1.234' })], ['cur', orderBody({ currency: 'XYZ' })], ['extra', orderBody({ coupon: 'x' })], ['null', orderBody({ amount: null })], ['email', orderBody({ customerEmail: 'x' })], ['items', orderBody({ items: [] })]] as const)
    await show(String(n), postOrder(h.url, b));
  await show('404', getJson(`${h.url}/orders/0190d4c2-0000-7000-8000-000000000000`));
  await show('400 id', getJson(`${h.url}/orders/abc`));
  await show('400 q', getJson(`${h.url}/orders?status=X`));
  await show('413', postOrder(h.url, orderBody({ customerId: 'x'.repeat(1 << 20) })));
} finally { await h.stop(); }
