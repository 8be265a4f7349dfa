import type { OrderSummary, ServiceCounters } from '../../src/wire.ts';
import { append, byId, fill, h, icon } from './dom.ts';
import { clock, count, offset, producerOf, reasonText, shortId, stateBadge, statusBadge, statusWords, stepMeaning } from './format.ts';
import { store, timelineOf, visibleOrders, type Connection } from './store.ts';

/* Drawing each panel from the store. Elements that can hold focus are kept and updated, never rebuilt. */

/** Says something to screen readers (the visible page shows the same). */
export function announce(text: string): void {
  const announcer = byId('announcer');
  announcer.textContent = '';
  // A change after clearing is announced even when the text repeats.
  setTimeout(() => (announcer.textContent = text), 50);
}

// ---- connection ---------------------------------------------------------------------------

const connectionLook: Record<Connection, { glyph: string; text: string }> = {
  connecting: { glyph: '◌', text: 'Connecting…' },
  live: { glyph: '●', text: 'Live: updates are pushed' },
  reconnecting: { glyph: '◌', text: 'Reconnecting… (missed updates follow)' },
  offline: { glyph: '✖', text: 'Offline: retrying' },
};

export function drawConnection(): void {
  const element = byId('connection');
  const look = connectionLook[store.connection];
  element.dataset.state = store.connection;
  fill(element, h('span', { class: 'connection-icon', 'aria-hidden': 'true' }, look.glyph), ' ', h('span', { class: 'connection-text' }, look.text));
}

// ---- recent orders ------------------------------------------------------------------------

const rows = new Map<string, HTMLTableRowElement>();

function itemsText(order: OrderSummary): string {
  return order.items.map((item) => `${item.qty} × ${item.sku}`).join(', ');
}

function orderRow(order: OrderSummary, select: (orderId: string) => void): HTMLTableRowElement {
  let row = rows.get(order.orderId);
  if (!row) {
    const button = h('button', { type: 'button', class: 'order-link', onclick: () => select(order.orderId) });
    row = h(
      'tr',
      { 'data-order-id': order.orderId },
      h('td', { class: 'cell-status' }),
      h('th', { scope: 'row', class: 'cell-order' }, button, h('span', { class: 'sub' }), h('span', { class: 'sub narrow-only' })),
      h('td', { class: 'numeric cell-amount wide-only' }),
      h('td', { class: 'wide-only cell-placed' }),
    );
    rows.set(order.orderId, row);
  }
  const [status, orderCell, amount, placed] = [...row.cells] as HTMLTableCellElement[];
  const selected = store.selected === order.orderId;
  row.classList.toggle('selected', selected);
  fill(status!, statusBadge(order.status), order.reason ? h('span', { class: 'sub reason' }, reasonText[order.reason] ?? order.reason) : null);
  const button = orderCell!.querySelector('button')!;
  fill(button, selected ? icon('▸') : null, `#${shortId(order.orderId)}`);
  button.setAttribute('aria-pressed', String(selected));
  button.setAttribute('aria-label', `Order ${shortId(order.orderId)}, ${statusWords(order.status, order.reason)}, ${order.customerEmail}: show its saga timeline`);
  const [details, narrowAmount] = [...orderCell!.querySelectorAll('.sub')];
  details!.textContent = `${order.customerEmail} · ${itemsText(order)}`;
  narrowAmount!.textContent = `${order.amount} ${order.currency}`;
  amount!.textContent = `${order.amount} ${order.currency}`;
  fill(placed!, h('time', { datetime: order.createdAt }, clock(order.createdAt)));
  return row;
}

export function drawOrders(select: (orderId: string) => void): void {
  const body = byId('orders-body');
  const matching = visibleOrders();
  const shown = matching.slice(0, store.shown);
  shown.forEach((order, index) => {
    const row = orderRow(order, select);
    if (body.children[index] !== row) body.insertBefore(row, body.children[index] ?? null);
  });
  while (body.children.length > shown.length) body.lastElementChild!.remove();
  for (const id of rows.keys()) if (!store.orders.has(id)) rows.delete(id);

  const total = store.orders.size;
  const pending = [...store.orders.values()].filter((order) => order.status === 'PENDING').length;
  byId('orders-summary').textContent =
    total === 0
      ? 'No orders yet: place one, or run a scenario.'
      : `Showing ${shown.length} of ${matching.length}${matching.length === total ? '' : ` matching (${total} in all)`}; ${pending} pending.`;
  const more = byId<HTMLButtonElement>('more-orders');
  more.hidden = matching.length <= shown.length;
}

// ---- timeline -----------------------------------------------------------------------------

export function drawTimeline(): void {
  const container = byId('timeline');
  const order = store.selected ? store.orders.get(store.selected) : undefined;
  if (!order) {
    fill(container, h('p', { class: 'hint' }, 'Choose an order, or run a scenario, to follow its saga step by step.'));
    return;
  }
  const view = store.sagaViews.get(order.sagaId);
  const entries = timelineOf(order.sagaId);
  const first = entries[0]?.at ?? order.createdAt;
  const state = entries.at(-1)?.toState ?? view?.state;
  const label = `Saga steps of order ${shortId(order.orderId)}`;

  const head = h(
    'div',
    { class: 'timeline-head' },
    h('p', { class: 'timeline-title' }, h('strong', {}, `Order #${shortId(order.orderId)}`), ' ', statusBadge(order.status), order.reason ? ` ${reasonText[order.reason] ?? order.reason}` : null),
    h(
      'dl',
      { class: 'facts' },
      h('div', {}, h('dt', {}, 'Customer'), h('dd', {}, order.customerEmail)),
      h('div', {}, h('dt', {}, 'Lines'), h('dd', {}, itemsText(order))),
      h('div', {}, h('dt', {}, 'Amount'), h('dd', {}, `${order.amount} ${order.currency}`)),
      state ? h('div', {}, h('dt', {}, 'Saga state'), h('dd', {}, stateBadge(state))) : null,
      view && order.status === 'PENDING' ? h('div', {}, h('dt', {}, 'Times out at'), h('dd', {}, h('time', { datetime: view.timeoutAt }, clock(view.timeoutAt)))) : null,
      h('div', {}, h('dt', {}, 'Ids'), h('dd', { class: 'ids' }, `order ${order.orderId}`, h('br'), `saga ${order.sagaId}`)),
    ),
  );

  const list = h(
    'ol',
    { class: 'steps', 'aria-label': label },
    entries.map((entry) => {
      const producer = producerOf(entry.type);
      const late = entry.fromState !== null && entry.fromState === entry.toState;
      return h(
        'li',
        { class: `step producer-${producer}${entry.compensation ? ' step-compensation' : ''}${late ? ' step-late' : ''}`, 'data-type': entry.type },
        h('div', { class: 'step-when' }, h('time', { datetime: entry.at }, clock(entry.at)), ' ', h('span', { class: 'step-offset' }, offset(first, entry.at))),
        h(
          'div',
          { class: 'step-what' },
          h('span', { class: 'step-type' }, entry.type),
          ' ',
          h('span', { class: `producer producer-tag-${producer}` }, `from ${producer}`),
          entry.compensation ? h('span', { class: 'tag tag-compensation' }, icon('↩'), ' Compensation') : null,
        ),
        h(
          'div',
          { class: 'step-transition' },
          late
            ? ['state unchanged (late event): ', stateBadge(entry.toState)]
            : [entry.fromState ? `${entry.fromState} ` : '', h('span', { 'aria-hidden': 'true' }, '→'), h('span', { class: 'visually-hidden' }, 'moves to'), ' ', stateBadge(entry.toState)],
        ),
        h('p', { class: 'step-meaning' }, late ? 'arrived after the saga finished: recorded, changes nothing' : (stepMeaning[entry.type] ?? '')),
      );
    }),
  );
  fill(
    container,
    head,
    entries.length ? list : h('p', { class: 'hint' }, 'Loading its steps…'),
    h('p', { class: 'hint legend' }, icon('↩'), ' Compensation: a step that undoes earlier work (a refund, a cancellation after a failure or timeout).'),
  );
}

// ---- catalogue ----------------------------------------------------------------------------

function notice(kind: 'info' | 'warning', ...children: (Node | string)[]): HTMLParagraphElement {
  return h('p', { class: `notice notice-${kind}` }, icon(kind === 'info' ? 'ⓘ' : '⚠'), ' ', ...children);
}

const MOVE_SHOWN_MS = 6000;

export function drawCatalogue(): void {
  const container = byId('catalogue');
  const panel = store.products;
  byId('sku-options').replaceChildren(...panel.products.map((product) => h('option', { value: product.sku }, product.name)));
  if (panel.status === 'not_configured') {
    fill(container, notice('info', 'Not configured: set ', h('code', {}, panel.setting), " on the order service to show inventory's catalogue and stock."));
    return;
  }
  if (panel.status === 'unreachable') {
    fill(container, notice('warning', `Inventory did not answer (${panel.error ?? 'no reason given'}). Trying again as orders move.`));
    return;
  }
  const now = Date.now();
  fill(
    container,
    h(
      'table',
      { class: 'catalogue-table' },
      h('caption', { class: 'visually-hidden' }, 'Catalogue: stock that can still be reserved, updated as reservations are made and released'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Product'), h('th', { scope: 'col', class: 'numeric' }, 'Price'), h('th', { scope: 'col', class: 'numeric' }, 'Stock'))),
      h(
        'tbody',
        {},
        panel.products.map((product) => {
          const move = store.stockMoves.get(product.sku);
          const recent = move && now - move.at < MOVE_SHOWN_MS ? move : undefined;
          const level = product.stock === 0 ? h('span', { class: 'stock-flag stock-out' }, icon('✖'), ' sold out') : product.stock <= 5 ? h('span', { class: 'stock-flag stock-low' }, icon('!'), ' low') : null;
          return h(
            'tr',
            { class: recent ? 'moved' : undefined, 'data-sku': product.sku },
            h('th', { scope: 'row' }, h('span', { class: 'product-name' }, product.name), h('span', { class: 'sub' }, product.sku)),
            h('td', { class: 'numeric' }, product.price),
            h(
              'td',
              { class: 'numeric stock-cell' },
              h('span', { class: 'stock' }, String(product.stock)),
              recent ? h('span', { class: `stock-move ${recent.delta < 0 ? 'down' : 'up'}` }, recent.delta < 0 ? `▼${-recent.delta}` : `▲${recent.delta}`) : null,
              level,
            ),
          );
        }),
      ),
    ),
  );
}

// ---- reliability --------------------------------------------------------------------------

export function drawReliability(): void {
  const container = byId('reliability');
  const panel = store.reliability;
  if (!panel) return;
  const value = (number: number | null, alarm = false) =>
    h('td', { class: `numeric${alarm && number ? ' alarm' : ''}` }, alarm && number ? [icon('⚠'), ' '] : null, count(number));
  // Dead-lettered since the process started, and under it what waits in the queue now (the truth across restarts).
  // In one cell rather than a column of its own: a fifth column does not fit the panel's width.
  const deadLetters = (counters: ServiceCounters) => {
    const cell = value(counters.deadLettered, true);
    if (counters.deadLetterQueue) {
      cell.classList.add('alarm');
      append(cell, [h('span', { class: 'sub waiting' }, `${count(counters.deadLetterQueue)} waiting`)]);
    }
    return cell;
  };
  fill(
    container,
    h(
      'table',
      { class: 'reliability-table' },
      h('caption', { class: 'visually-hidden' }, 'Reliability counters per service'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Service'),
          h('th', { scope: 'col', class: 'numeric' }, 'Outbox backlog'),
          h('th', { scope: 'col', class: 'numeric' }, 'Retried'),
          h('th', { scope: 'col', class: 'numeric' }, 'Dead-lettered'),
        ),
      ),
      h(
        'tbody',
        {},
        panel.services.map((counters) =>
          h(
            'tr',
            { 'data-service': counters.service },
            h('th', { scope: 'row' }, counters.service),
            counters.status === 'ok'
              ? [value(counters.outboxBacklog), value(counters.retried), deadLetters(counters)]
              : h(
                  'td',
                  { colspan: 3, class: 'unknown' },
                  counters.status === 'not_configured' ? ['not configured: set ', h('code', {}, counters.setting ?? '')] : [icon('⚠'), ` unreachable (${counters.error ?? 'no answer'})`],
                ),
          ),
        ),
      ),
    ),
    // A dead-lettered refund or stock release is money or stock the saga will never give back on its own.
    panel.services
      .filter((counters) => counters.compensationsDeadLettered)
      .map((counters) =>
        h(
          'p',
          { class: 'alarm compensations-dead-lettered', 'data-service': counters.service, role: 'alert' },
          icon('⚠'),
          ' ',
          h('strong', {}, `${count(counters.compensationsDeadLettered)} compensation${counters.compensationsDeadLettered === 1 ? '' : 's'} dead-lettered in ${counters.service}`),
          ': refunds or stock releases that did not happen; those orders keep their charge or their stock until replayed with ',
          h('code', {}, `npm run dlq -- list --service ${counters.service}`),
          ' then ',
          h('code', {}, 'replay'),
          '.',
        ),
      ),
    h('p', { class: 'timed-out' }, h('strong', {}, count(panel.sagasTimedOut)), ` saga${panel.sagasTimedOut === 1 ? '' : 's'} timed out (cancelled after SAGA_TIMEOUT_MS${store.settings ? `, ${store.settings.sagaTimeoutMs} ms` : ''}).`),
    h(
      'p',
      { class: 'hint' },
      "Retried and dead-lettered count since each process started, from its GET /metrics; \"waiting\" is what is in the dead-letter queue now, as the broker says. The order service reads the others' metrics for this page only; the saga never calls another service.",
    ),
  );
}

// ---- a group of orders (the burst) --------------------------------------------------------

export function drawGroup(): void {
  const group = store.group;
  if (!group) return;
  const orders = group.orderIds.map((id) => store.orders.get(id)).filter((order): order is OrderSummary => order !== undefined);
  const confirmed = orders.filter((order) => order.status === 'CONFIRMED').length;
  const cancelled = orders.filter((order) => order.status === 'CANCELLED').length;
  const pending = group.orderIds.length - confirmed - cancelled;
  fill(
    byId('scenario-result'),
    `${group.label} ${group.orderIds.length} accepted${group.failed ? `, ${group.failed} refused` : ''}: `,
    h('span', { class: 'status status-confirmed' }, icon('✔'), ` ${confirmed} confirmed`),
    ', ',
    h('span', { class: 'status status-cancelled' }, icon('✖'), ` ${cancelled} cancelled`),
    ', ',
    h('span', { class: 'status status-pending' }, icon('◷'), ` ${pending} pending`),
    '.',
  );
}
