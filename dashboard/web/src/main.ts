import type { ProductsPanel, ReliabilityPanel, SagaStep } from '../../src/wire.ts';
import { ApiError, dashboardState, placeOrder, saga, type Accepted } from './api.ts';
import { byId, fill, h } from './dom.ts';
import { setUpForm, updateTotal } from './form.ts';
import { shortId, statusWords } from './format.ts';
import { scenarios, type ScenarioId } from './scenarios.ts';
import { addStep, changed, onRedraw, setConnection, setProducts, setReliability, store, upsertOrder } from './store.ts';
import { announce, drawCatalogue, drawConnection, drawGroup, drawOrders, drawReliability, drawTimeline } from './views.ts';

/*
 * The dashboard: loads GET /dashboard/state once, then follows GET /dashboard/events
 * (Server-Sent Events). The browser reconnects by itself and sends Last-Event-ID, so the
 * order service replays what was missed; after a longer break it says `reset` and the page
 * loads its state again.
 */

// ---- selecting an order -------------------------------------------------------------------

async function select(orderId: string, { scroll = true } = {}): Promise<void> {
  store.selected = orderId;
  changed('orders', 'timeline');
  const order = store.orders.get(orderId);
  if (!order) return;
  if (scroll) {
    // On a narrow screen the timeline is below the orders: bring it into view (the focus stays where it is).
    const heading = byId('timeline-heading');
    if (heading.getBoundingClientRect().top > window.innerHeight - 80) heading.scrollIntoView({ block: 'start', behavior: 'smooth' });
  }
  try {
    store.sagaViews.set(order.sagaId, await saga(order.sagaId));
    changed('timeline');
  } catch (error) {
    fill(byId('timeline'), h('p', { class: 'form-error' }, `Could not load the saga: ${String(error)}`));
  }
}

/** An order this page placed: show it at once (the stream brings its steps) and follow it. */
function placed(accepted: Accepted, text: string, follow = true): void {
  upsertOrder({
    orderId: accepted.orderId,
    sagaId: accepted.sagaId,
    status: 'PENDING',
    reason: null,
    customerId: null,
    customerEmail: '',
    items: [],
    amount: '',
    currency: '',
    createdAt: new Date().toISOString(),
    updatedAt: '', // older than anything the stream brings
  });
  if (follow) void select(accepted.orderId, { scroll: false });
  if (text) announce(text);
}

// ---- scenarios ----------------------------------------------------------------------------

const scenarioButtons = new Map<ScenarioId, { button: HTMLButtonElement; description: HTMLElement }>();

function drawScenarios(): void {
  if (!store.settings) return;
  const container = byId('scenarios');
  for (const scenario of scenarios(store.products, store.settings)) {
    let entry = scenarioButtons.get(scenario.id);
    if (!entry) {
      const description = h('span', { class: 'scenario-description', id: `scenario-${scenario.id}-description` });
      const button = h('button', { type: 'button', class: 'button scenario', 'data-scenario': scenario.id, 'aria-describedby': description.id, onclick: () => void run(scenario.id) }, scenario.label);
      container.append(h('div', { class: 'scenario-item' }, button, description));
      entry = { button, description };
      scenarioButtons.set(scenario.id, entry);
    }
    entry.description.textContent = scenario.description;
    // aria-disabled, not disabled: the button stays focusable, so keyboard and screen-reader users learn why.
    if (scenario.unavailable) entry.button.setAttribute('aria-disabled', 'true');
    else entry.button.removeAttribute('aria-disabled');
  }
}

async function run(id: ScenarioId): Promise<void> {
  if (!store.settings) return;
  const scenario = scenarios(store.products, store.settings).find((candidate) => candidate.id === id)!;
  const result = byId('scenario-result');
  if (scenario.unavailable) {
    result.textContent = `${scenario.label} is not available with this configuration. ${scenario.unavailable}`;
    return;
  }
  const plan = scenario.plan();
  const { button } = scenarioButtons.get(id)!;
  button.setAttribute('aria-busy', 'true');
  result.textContent = `${plan.summary} Placing ${plan.orders.length === 1 ? 'the order' : `${plan.orders.length} orders`}…`;
  const outcomes = await Promise.allSettled(plan.orders.map((order) => placeOrder(order)));
  button.removeAttribute('aria-busy');
  const accepted = outcomes.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
  const refused = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason as unknown] : []));
  if (plan.orders.length > 1) {
    store.group = { label: plan.summary, orderIds: accepted.map((order) => order.orderId), failed: refused.length };
    for (const order of accepted) placed(order, '', false);
    changed('group');
    announce(`${accepted.length} orders placed.`);
    return;
  }
  store.group = undefined;
  const [first] = accepted;
  if (!first) {
    const error = refused[0];
    result.textContent = `${plan.summary} The order service refused it: ${error instanceof ApiError ? error.message : String(error)}`;
    return;
  }
  const text = `${plan.summary} Placed order #${shortId(first.orderId)}; its saga timeline follows it.`;
  fill(result, text, ' ', h('a', { href: '#timeline-heading', class: 'skip-to-timeline' }, 'Go to the timeline'));
  placed(first, text, plan.follow);
}

// ---- the event stream ---------------------------------------------------------------------

let source: EventSource | undefined;
let lastEventId: number | undefined;
let retryTimer: number | undefined;

function connect(after: number): void {
  source?.close();
  clearTimeout(retryTimer);
  lastEventId = after;
  setConnection(store.connection === 'connecting' ? 'connecting' : 'reconnecting');
  const stream = new EventSource(`/dashboard/events?after=${after}`);
  source = stream;
  stream.addEventListener('open', () => setConnection('live'));
  stream.addEventListener('error', () => {
    if (stream.readyState === EventSource.CLOSED) {
      // Refused (too many pages, or the service is restarting): try again ourselves, from where we were.
      setConnection('offline');
      retryTimer = window.setTimeout(() => connect(lastEventId ?? after), 3000);
    } else {
      setConnection('reconnecting'); // the browser retries by itself, with Last-Event-ID
    }
  });
  stream.addEventListener('saga', (event) => {
    const message = event as MessageEvent<string>;
    if (message.lastEventId) lastEventId = Number(message.lastEventId);
    onStep(JSON.parse(message.data) as SagaStep);
  });
  stream.addEventListener('products', (event) => {
    setProducts(JSON.parse((event as MessageEvent<string>).data) as ProductsPanel);
    updateTotal();
  });
  stream.addEventListener('reliability', (event) => setReliability(JSON.parse((event as MessageEvent<string>).data) as ReliabilityPanel));
  stream.addEventListener('reset', () => {
    stream.close();
    void load();
  });
}

function onStep(step: SagaStep): void {
  if (!addStep(step)) return;
  const before = upsertOrder(step.order);
  if (step.orderId === store.selected && before && before.status !== step.order.status && step.order.status !== 'PENDING') {
    announce(`Order ${shortId(step.orderId)} ${statusWords(step.order.status, step.order.reason)}.`);
  }
}

// ---- start --------------------------------------------------------------------------------

async function load(): Promise<void> {
  try {
    const state = await dashboardState();
    store.settings = state.settings;
    for (const order of state.orders) upsertOrder(order);
    setProducts(state.products);
    setReliability(state.reliability);
    updateTotal();
    changed('scenarios', 'orders', 'timeline');
    connect(state.resumeFrom);
  } catch (error) {
    setConnection('offline');
    byId('orders-summary').textContent = `Could not load the dashboard (${String(error)}); trying again…`;
    retryTimer = window.setTimeout(() => void load(), 3000);
  }
}

onRedraw((parts) => {
  if (parts.has('connection')) drawConnection();
  if (parts.has('scenarios')) drawScenarios();
  if (parts.has('catalogue')) drawCatalogue();
  if (parts.has('reliability')) drawReliability();
  if (parts.has('orders')) drawOrders((orderId) => void select(orderId));
  if (parts.has('timeline')) drawTimeline();
  if (parts.has('group')) drawGroup();
});

byId<HTMLSelectElement>('status-filter').addEventListener('change', (event) => {
  store.filter.status = (event.target as HTMLSelectElement).value;
  changed('orders');
});
byId<HTMLInputElement>('text-filter').addEventListener('input', (event) => {
  store.filter.text = (event.target as HTMLInputElement).value;
  changed('orders');
});
byId('more-orders').addEventListener('click', () => {
  store.shown += 30;
  changed('orders');
});
// Stock moves are marked for a few seconds.
window.setInterval(() => {
  if ([...store.stockMoves.values()].some((move) => Date.now() - move.at < 7000)) changed('catalogue');
}, 2000);

setUpForm((accepted, text) => placed(accepted, text));
drawConnection();
void load();
