/**
 * The curl examples of README.md and the docs (api, flows, configuration…), run against the four services.
 *
 * Every command line in a ```sh block that calls curl is parsed the way sh and curl would
 * read it (method, URL, -H headers, -d body) and sent, in reading order (DOCUMENTS), to the system that
 * `startSystem` runs in this process: localhost:3000 is the order service, :3001 payment,
 * :3002 inventory, :3003 notification. Each example must answer the status written after it
 * (`# → 202`); a ```json block right after an example must have the fields of the real
 * response (values differ from run to run, field names must not); $ORDER_ID and $SAGA_ID
 * are the ids of the README's first POST /orders; $ADMIN_TOKEN is the token inventory runs
 * with. The docs must also show every route of the API and every error status.
 */
import { exec } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { waitFor } from '@checkout-saga/shared/testing';
import { startSystem, type System } from './support/system.ts';

/** The documents whose examples run, in reading order: the README's first order gives $ORDER_ID to the rest. */
const DOCUMENTS = ['README.md', 'docs/flows.md', 'docs/api.md', 'docs/configuration.md', 'docs/testing.md', 'docs/troubleshooting.md'];
const README = 'README.md and docs/';
/** Asynchronous on purpose: the services run in this process, so a blocking call would stall them. */
const shell = promisify(exec);
const documents = DOCUMENTS.map((file) => ({ file, markdown: readFileSync(new URL(`../${file}`, import.meta.url), 'utf8') }));

/** What the examples' $ADMIN_TOKEN stands for; inventory runs with it, so PUT /products/:sku needs it. */
const ADMIN_TOKEN = 'readme-admin-token';

type ServiceName = 'order' | 'payment' | 'inventory' | 'notification';
const servicesByPort: Record<string, ServiceName> = { 3000: 'order', 3001: 'payment', 3002: 'inventory', 3003: 'notification' };

/** The routes of the contract: each needs an example that succeeds. `any`: every service serves it. */
const routes: { name: string; service: ServiceName | 'any'; method: string; path: RegExp }[] = [
  { name: 'POST /orders', service: 'order', method: 'POST', path: /^\/orders$/ },
  { name: 'GET /orders/:orderId', service: 'order', method: 'GET', path: /^\/orders\/[^/?]+$/ },
  { name: 'GET /orders?status=&limit=', service: 'order', method: 'GET', path: /^\/orders\?(?=.*\bstatus=)(?=.*\blimit=)/ },
  { name: 'GET /sagas/:sagaId', service: 'order', method: 'GET', path: /^\/sagas\/[^/?]+$/ },
  { name: 'GET /payments/:orderId', service: 'payment', method: 'GET', path: /^\/payments\/[^/?]+$/ },
  { name: 'GET /products', service: 'inventory', method: 'GET', path: /^\/products$/ },
  { name: 'GET /products/:sku', service: 'inventory', method: 'GET', path: /^\/products\/[^/?]+$/ },
  { name: 'PUT /products/:sku', service: 'inventory', method: 'PUT', path: /^\/products\/[^/?]+$/ },
  { name: 'GET /health', service: 'any', method: 'GET', path: /^\/health$/ },
  { name: 'GET /ready', service: 'any', method: 'GET', path: /^\/ready$/ },
  { name: 'GET /metrics', service: 'any', method: 'GET', path: /^\/metrics$/ },
];
const errorStatuses = [400, 404, 409, 413];

// ---- reading the documents ------------------------------------------------------------------

interface Line {
  text: string;
  /** <file>:<line number>, for messages. */
  where: string;
}

interface Block {
  lang: string;
  lines: Line[];
  /** Line numbers of the opening and closing fences. */
  start: number;
  end: number;
}

interface Example {
  where: string;
  line: string;
  method: string;
  service: ServiceName;
  /** Path and query; a $VARIABLE is still in it as a marker (see `variable`). */
  path: string;
  headers: [string, string][];
  /** A literal body (-d '…'), or one read from stdin (`producer | curl … --data-binary @-`). */
  body?: { text: string } | { producer: string; stripNewlines: boolean };
  status: number;
  /** The ```json block that follows the example, if any. */
  response?: Line;
}

/** Fenced code blocks, with their language and line numbers. */
function fencedBlocks(markdown: string, file: string): Block[] {
  const blocks: Block[] = [];
  let open: Block | undefined;
  markdown.split('\n').forEach((text, index) => {
    const number = index + 1;
    const fence = /^\s*```\s*([\w-]*)/.exec(text);
    if (!fence) {
      open?.lines.push({ text, where: `${file}:${number}` });
    } else if (open) {
      open.end = number;
      blocks.push(open);
      open = undefined;
    } else {
      open = { lang: fence[1] ?? '', lines: [], start: number, end: number };
    }
  });
  return blocks;
}

/** A $NAME of the shell, kept in a parsed word (between two private-use characters) until the test knows its value. */
const variable = (name: string) => `\uE000${name}\uE001`;
const variablePattern = /\uE000(\w+)\uE001/g;
const showVariables = (text: string) => text.replace(variablePattern, (_match, name: string) => `$${name}`);

type Token = { word: string } | { pipeAt: number };

/**
 * Splits a command line into words as sh does for what the README uses: '…' (literal),
 * "…" (with \" \\ \$ and $NAME), \x, $NAME and ${NAME}, `|` between commands, and a
 * trailing `# comment`.
 */
function shellWords(line: string): { tokens: Token[]; comment: string } {
  const tokens: Token[] = [];
  let word: string | undefined; // undefined between words
  let i = 0;
  const expansion = (): string => {
    const match = /^\$(?:\{(\w+)\}|(\w+))/.exec(line.slice(i));
    if (!match) {
      i += 1;
      return '$';
    }
    i += match[0].length;
    return variable((match[1] ?? match[2])!);
  };
  const endWord = () => {
    if (word !== undefined) tokens.push({ word });
    word = undefined;
  };

  while (i < line.length) {
    const char = line[i]!;
    if (/\s/.test(char)) {
      endWord();
      i += 1;
    } else if (char === '#' && word === undefined) {
      return { tokens, comment: line.slice(i + 1).trim() };
    } else if (char === '|') {
      endWord();
      tokens.push({ pipeAt: i });
      i += 1;
    } else if (char === "'") {
      const close = line.indexOf("'", i + 1);
      if (close < 0) throw new Error('unterminated single quote');
      word = (word ?? '') + line.slice(i + 1, close);
      i = close + 1;
    } else if (char === '"') {
      let text = '';
      for (i += 1; line[i] !== '"'; ) {
        if (i >= line.length) throw new Error('unterminated double quote');
        if (line[i] === '\\' && /["\\$`]/.test(line[i + 1] ?? '')) {
          text += line[i + 1];
          i += 2;
        } else if (line[i] === '$') {
          text += expansion();
        } else {
          text += line[i];
          i += 1;
        }
      }
      word = (word ?? '') + text;
      i += 1;
    } else if (char === '\\') {
      word = (word ?? '') + (line[i + 1] ?? '');
      i += 2;
    } else if (char === '$') {
      word = (word ?? '') + expansion();
    } else {
      word = (word ?? '') + char;
      i += 1;
    }
  }
  endWord();
  return { tokens, comment: '' };
}

/** One curl command line, read as curl reads it. Throws what is wrong with it. */
function parseExample({ text: line, where }: Line): Example {
  const { tokens, comment } = shellWords(line);
  // `producer | curl …`: the last command is curl; whatever comes before feeds its stdin.
  const lastPipe = tokens.findLastIndex((token) => 'pipeAt' in token);
  const producer = lastPipe >= 0 ? line.slice(0, (tokens[lastPipe] as { pipeAt: number }).pipeAt).trim() : undefined;
  const words = tokens.slice(lastPipe + 1).map((token) => ('word' in token ? token.word : '|'));
  if (words[0] !== 'curl') throw new Error('the last command on the line is not curl');

  const status = /(?:→|->)\s*(\d{3})\b/.exec(comment)?.[1];
  if (!status) throw new Error('no expected status: end the line with `# → <status>`');

  let method: string | undefined;
  let url: string | undefined;
  let body: Example['body'];
  const headers: [string, string][] = [];
  for (let k = 1; k < words.length; k++) {
    const option = words[k]!;
    const value = () => {
      const next = words[++k];
      if (next === undefined) throw new Error(`${option} needs a value`);
      return next;
    };
    if (option === '-X' || option === '--request') {
      method = value();
    } else if (option === '-H' || option === '--header') {
      const header = value();
      const colon = header.indexOf(':');
      if (colon < 1) throw new Error(`header ${JSON.stringify(header)} has no name`);
      headers.push([header.slice(0, colon).trim(), header.slice(colon + 1).trim()]);
    } else if (['-d', '--data', '--data-raw', '--data-binary'].includes(option)) {
      const data = value();
      if (data === '@-' && option !== '--data-raw') {
        if (!producer) throw new Error(`${option} @- reads stdin, but nothing is piped into curl`);
        // As curl does: -d @- drops newlines, --data-binary @- sends the bytes as they are.
        body = { producer, stripNewlines: option !== '--data-binary' };
      } else if (data.startsWith('@') && option !== '--data-raw') {
        throw new Error(`${option} ${data} reads a file; this test only knows -d '…' and stdin`);
      } else {
        body = { text: data };
      }
    } else if (/^-[sSi]+$/.test(option) || ['--silent', '--show-error', '--include'].includes(option)) {
      // Output options: they change what curl prints, not the request.
    } else if (option.startsWith('-')) {
      throw new Error(`curl option ${option} is not one this test understands`);
    } else if (url !== undefined) {
      throw new Error(`two URLs: ${url} and ${option}`);
    } else {
      url = option;
    }
  }
  if (!url) throw new Error('no URL');

  const address = /^(?:http:\/\/)?(?:localhost|127\.0\.0\.1):(\d+)(\/[^#]*)?$/.exec(url);
  const service = address ? servicesByPort[address[1]!] : undefined;
  if (!address || !service) throw new Error(`URL ${showVariables(url)} is not localhost:3000–3003`);
  return { where, line, method: method ?? (body ? 'POST' : 'GET'), service, path: address[2] ?? '/', headers, ...(body ? { body } : {}), status: Number(status) };
}

/** Every curl example of one document, in order, and what is wrong with the lines that could not be read. */
function readExamples(markdown: string, file: string): { examples: Example[]; problems: string[]; jsonBlocks: Line[] } {
  const lines = markdown.split('\n');
  const blocks = fencedBlocks(markdown, file);
  const examples: Example[] = [];
  const problems: string[] = [];
  blocks.forEach((block, index) => {
    if (block.lang !== 'sh') return;
    const inBlock: Example[] = [];
    for (const line of block.lines) {
      const command = line.text.trim();
      if (command.startsWith('#') || !/\bcurl\b/.test(command)) continue;
      try {
        inBlock.push(parseExample(line));
      } catch (error) {
        problems.push(`${line.where}: ${(error as Error).message}: ${command}`);
      }
    }
    // A ```json block with nothing but blank lines before it shows the response of the block's last example.
    const next = blocks[index + 1];
    const between = lines.slice(block.end, next ? next.start - 1 : 0);
    const last = inBlock.at(-1);
    if (last && next?.lang === 'json' && between.every((text) => text.trim() === '')) {
      last.response = { text: next.lines.map((line) => line.text).join('\n'), where: `${file}:${next.start}` };
    }
    examples.push(...inBlock);
  });
  const jsonBlocks = blocks.filter((block) => block.lang === 'json').map((block) => ({ text: block.lines.map((line) => line.text).join('\n'), where: `${file}:${block.start}` }));
  return { examples, problems, jsonBlocks };
}

// ---- comparing a documented response with the real one -------------------------------------

const kindOf = (value: unknown) => (Array.isArray(value) ? 'array' : value !== null && typeof value === 'object' ? 'object' : 'scalar');

/**
 * Where the field names of two JSON values differ, recursively; arrays are compared by their
 * first elements. Values are not compared: ids, times, states and stock differ between runs.
 */
function shapeDifferences(documented: unknown, actual: unknown, path = '$'): string[] {
  const [documentedKind, actualKind] = [kindOf(documented), kindOf(actual)];
  if (documentedKind !== actualKind) return [`${path}: documented as ${documentedKind}, returned as ${actualKind}`];
  if (Array.isArray(documented) && Array.isArray(actual)) {
    return documented.length > 0 && actual.length > 0 ? shapeDifferences(documented[0], actual[0], `${path}[0]`) : [];
  }
  if (documentedKind !== 'object') return [];
  const [shown, real] = [documented as Record<string, unknown>, actual as Record<string, unknown>];
  return [
    ...Object.keys(shown).filter((key) => !(key in real)).map((key) => `${path}.${key}: documented, not returned`),
    ...Object.keys(real).filter((key) => !(key in shown)).map((key) => `${path}.${key}: returned, not documented`),
    ...Object.keys(shown).filter((key) => key in real).flatMap((key) => shapeDifferences(shown[key], real[key], `${path}.${key}`)),
  ];
}

// ---- the tests ------------------------------------------------------------------------------

const read = documents.map(({ file, markdown }) => readExamples(markdown, file));
const examples = read.flatMap((document) => document.examples);
const problems = read.flatMap((document) => document.problems);
const jsonBlocks = read.flatMap((document) => document.jsonBlocks);
const pathForMatching = (example: Example) => example.path.replace(variablePattern, 'x');
const describeExample = (example: Example) => `${example.where}: ${example.method} ${showVariables(example.path)} (${example.service}) → ${example.status}`;

describe(`${README} examples`, () => {
  test('every curl line is an example this test can run, with the status it answers', () => {
    expect(problems, problems.join('\n')).toEqual([]);
    expect(examples.length).toBeGreaterThan(0);
  });

  test('every request body given with -d is valid JSON', () => {
    const invalid = examples.flatMap((example) => {
      if (!example.body || !('text' in example.body)) return [];
      try {
        JSON.parse(example.body.text);
        return [];
      } catch (error) {
        return [`${example.where}: ${(error as Error).message}`];
      }
    });
    expect(invalid).toEqual([]);
  });

  test('every ```json block is valid JSON', () => {
    const invalid = jsonBlocks.flatMap((block) => {
      try {
        JSON.parse(block.text);
        return [];
      } catch (error) {
        return [`${block.where}: ${(error as Error).message}`];
      }
    });
    expect(invalid).toEqual([]);
  });

  test('every route of the API has an example that succeeds', () => {
    const shown = (route: (typeof routes)[number]) =>
      examples.some(
        (example) =>
          example.status < 300 &&
          example.method === route.method &&
          (route.service === 'any' || route.service === example.service) &&
          route.path.test(pathForMatching(example)),
      );
    expect(routes.filter((route) => !shown(route)).map((route) => route.name)).toEqual([]);
  });

  test(`every error status of the contract (${errorStatuses.join(', ')}) has an example`, () => {
    expect(errorStatuses.filter((status) => !examples.some((example) => example.status === status))).toEqual([]);
  });

  describe('run in order against the four services', () => {
    let system: System;
    const variables: Record<string, string> = { ADMIN_TOKEN };

    beforeAll(async () => {
      system = await startSystem('readme', { inventory: { ADMIN_TOKEN } });
    });
    afterAll(async () => {
      await system?.stop();
    });

    const baseUrl = (service: ServiceName) => {
      if (service === 'order') return system.orderUrl;
      if (service === 'payment') return system.paymentUrl;
      if (service === 'inventory') return system.inventoryUrl;
      return system.services.find((running) => running.name === service)!.url;
    };
    const expand = (text: string, example: Example) =>
      text.replace(variablePattern, (_match, name: string) => {
        const value = variables[name];
        if (value === undefined) {
          throw new Error(`${example.where}: $${name} has no value here (ORDER_ID and SAGA_ID come from the README's first POST /orders that answers 202)`);
        }
        return value;
      });

    test.each(examples.map((example) => [describeExample(example), example] as const))('%s', async (_name, example) => {
      const headers = new Headers(example.headers.map(([name, value]) => [name, expand(value, example)]));
      let body: string | undefined;
      if (example.body && 'text' in example.body) body = expand(example.body.text, example);
      if (example.body && 'producer' in example.body) {
        const { stdout: produced } = await shell(example.body.producer, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
        body = example.body.stripNewlines ? produced.replace(/[\r\n]/g, '') : produced;
      }
      // What curl sends with -d when no Content-Type is given: an example that forgets the header fails as it would for a reader.
      if (body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded');

      const response = await fetch(`${baseUrl(example.service)}${expand(example.path, example)}`, { method: example.method, headers, ...(body === undefined ? {} : { body }) });
      const text = await response.text();
      expect(response.status, `${example.where}: ${example.line}\nanswered ${response.status}: ${text.slice(0, 500)}`).toBe(example.status);

      if (example.response) {
        const differences = shapeDifferences(JSON.parse(example.response.text), JSON.parse(text));
        expect(differences, `the response shown at ${example.response.where} differs from the real one: ${text.slice(0, 500)}`).toEqual([]);
      }

      if (variables.ORDER_ID === undefined && example.method === 'POST' && example.service === 'order' && pathForMatching(example) === '/orders' && response.status === 202) {
        const accepted = JSON.parse(text) as { orderId: string; sagaId: string };
        variables.ORDER_ID = accepted.orderId;
        variables.SAGA_ID = accepted.sagaId;
        // A reader runs the next command seconds later, when the saga has long finished; so does this test.
        await waitFor(
          async () => ((await (await fetch(`${system.orderUrl}/orders/${accepted.orderId}`)).json()) as { status: string }).status !== 'PENDING',
          { message: `the order of the README's first POST /orders (${example.where}) to settle` },
        );
      }
    });
  });
});
