import { ApiError, placeOrder, type Accepted, type OrderRequest } from './api.ts';
import { byId, h } from './dom.ts';
import { fromMinor, shortId, toMinor } from './format.ts';
import { store } from './store.ts';

/* The "Place an order" form: several lines, an email, an amount. */

let nextLine = 1;
let amountTouched = false;

function lineList(): HTMLOListElement {
  return byId<HTMLOListElement>('lines');
}

function renumber(): void {
  const lines = [...lineList().children] as HTMLLIElement[];
  lines.forEach((line, index) => {
    for (const hidden of line.querySelectorAll('.line-number')) hidden.textContent = ` of line ${index + 1}`;
    line.querySelector('.remove-line')?.setAttribute('aria-label', `Remove line ${index + 1}`);
    (line.querySelector('.remove-line') as HTMLButtonElement | null)?.toggleAttribute('disabled', lines.length === 1);
  });
}

function addLine(sku = '', qty = 1, focus = false): void {
  const n = nextLine++;
  const skuInput = h('input', { id: `sku-${n}`, name: 'sku', list: 'sku-options', required: true, autocomplete: 'off', spellcheck: 'false', value: sku, class: 'sku-input' });
  const line = h(
    'li',
    { class: 'line' },
    h('div', { class: 'field' }, h('label', { for: `sku-${n}` }, 'SKU', h('span', { class: 'visually-hidden line-number' })), skuInput),
    h('div', { class: 'field qty' }, h('label', { for: `qty-${n}` }, 'Qty', h('span', { class: 'visually-hidden line-number' })), h('input', { id: `qty-${n}`, name: 'qty', type: 'number', min: 1, max: 1000, step: 1, inputmode: 'numeric', required: true, value: qty })),
    h('button', {
      type: 'button',
      class: 'button icon-button remove-line',
      onclick: () => {
        const previous = line.previousElementSibling ?? line.nextElementSibling;
        line.remove();
        renumber();
        updateTotal();
        (previous?.querySelector('input') as HTMLInputElement | null)?.focus();
      },
    }, h('span', { 'aria-hidden': 'true' }, '✕')),
  );
  lineList().append(line);
  renumber();
  updateTotal();
  if (focus) skuInput.focus();
}

function lines(): { sku: string; qty: number; inputs: HTMLInputElement[] }[] {
  return ([...lineList().children] as HTMLLIElement[]).map((line) => {
    const inputs = [...line.querySelectorAll('input')];
    return { sku: inputs[0]!.value.trim(), qty: Number(inputs[1]!.value), inputs };
  });
}

/** The catalogue price of the lines, when every SKU is known; the amount follows it until the user types one. */
export function updateTotal(): void {
  const prices = new Map(store.products.products.map((product) => [product.sku, toMinor(product.price)]));
  const current = lines();
  const known = current.length > 0 && current.every((line) => prices.has(line.sku) && Number.isInteger(line.qty) && line.qty > 0);
  const total = known ? fromMinor(current.reduce((sum, line) => sum + prices.get(line.sku)! * line.qty, 0)) : undefined;
  byId('catalogue-total').textContent = total ? `Catalogue price of these lines: ${total}.` : '';
  if (total && !amountTouched) byId<HTMLInputElement>('amount').value = total;
}

function invalid(input: HTMLInputElement, problems: string[], message: string): void {
  input.setAttribute('aria-invalid', 'true');
  problems.push(message);
}

/** Reads and checks the form; the first problem's field gets the focus. */
function read(): OrderRequest | undefined {
  const form = byId<HTMLFormElement>('order-form');
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
  const problems: string[] = [];
  const email = byId<HTMLInputElement>('email');
  const amount = byId<HTMLInputElement>('amount');
  if (!/^[^\s@]+@[^\s@]+$/.test(email.value.trim())) invalid(email, problems, 'Enter an email such as ada@example.com.');
  const current = lines();
  current.forEach((line, index) => {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(line.sku)) invalid(line.inputs[0]!, problems, `Line ${index + 1}: enter a SKU (letters, digits, . _ -).`);
    if (!Number.isInteger(line.qty) || line.qty < 1 || line.qty > 1000) invalid(line.inputs[1]!, problems, `Line ${index + 1}: the quantity is a whole number from 1 to 1000.`);
  });
  if (Number.isNaN(toMinor(amount.value))) invalid(amount, problems, 'Enter the amount with at most two decimals, such as 148.99.');
  const error = byId('form-error');
  error.textContent = problems.join(' ');
  if (problems.length) {
    (form.querySelector('[aria-invalid]') as HTMLInputElement | null)?.focus();
    return undefined;
  }
  return {
    customerEmail: email.value.trim(),
    items: current.map(({ sku, qty }) => ({ sku, qty })),
    amount: amount.value.trim(),
    currency: byId<HTMLSelectElement>('currency').value,
  };
}

export function setUpForm(placed: (accepted: Accepted, text: string) => void): void {
  addLine('KEYBOARD', 1);
  addLine('MOUSE', 2);
  byId('add-line').addEventListener('click', () => addLine('', 1, true));
  const form = byId<HTMLFormElement>('order-form');
  form.addEventListener('input', (event) => {
    if ((event.target as HTMLElement).id === 'amount') amountTouched = byId<HTMLInputElement>('amount').value.trim() !== '';
    else updateTotal();
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const order = read();
    if (!order) return;
    const submit = form.querySelector<HTMLButtonElement>('button[type=submit]')!;
    submit.disabled = true;
    byId('form-status').textContent = 'Placing the order…';
    try {
      const accepted = await placeOrder(order);
      const text = `Placed order #${shortId(accepted.orderId)}: follow it in the saga timeline.`;
      byId('form-status').textContent = text;
      placed(accepted, text);
    } catch (error) {
      byId('form-status').textContent = '';
      byId('form-error').textContent = error instanceof ApiError ? `The order service refused the order (${error.status}): ${error.message}` : `Could not reach the order service: ${String(error)}`;
    } finally {
      submit.disabled = false;
    }
  });
}
