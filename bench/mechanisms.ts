/**
 * `npm run bench:mechanisms`: what each of the kit's performance mechanisms pays.
 *
 * Each round runs the saga bench (`bench/saga.ts --json --no-work`, its own system each time)
 * once as it is, the baseline, and once per mechanism with that mechanism switched off
 * (KIT_WITHOUT=<name> in the services' environment), in an order rotated from round to round,
 * so the runs with and without each mechanism alternate through the session and a host that
 * gets busier or quieter weighs on both. Then it prints a markdown table: per mechanism, the
 * mean and each run of sagas/s at saturation, p50 with one saga in flight, p50 at the offered
 * rate and Node CPU per saga, what the mechanism pays on each, and a verdict by the rule of
 * issue 13: keep it if it pays at least 5 % of throughput or 1 ms of either p50.
 *
 *   npm run bench:mechanisms -- [--rounds 3] [--only pipelining,consumer-batches]
 *        [--seconds 15] [--rate-seconds 8] [--serial-seconds 8] [--rate 20] [--concurrency 64]
 *        [--tcp] [--out test-output/mechanisms-<time>.json]
 *
 * The raw results (every run's summary) go to --out as JSON. Each run takes the three phases
 * plus about 20 s to start, warm up and remove its system: with the defaults about 50 s, so
 * three rounds of the baseline and eight mechanisms about 25 minutes.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MECHANISMS, type Mechanism } from '@checkout-saga/shared/testing';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    only: { type: 'string' },
    seconds: { type: 'string', default: '15' },
    'rate-seconds': { type: 'string', default: '8' },
    'serial-seconds': { type: 'string', default: '8' },
    rate: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '64' },
    tcp: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});

const rounds = Number(args.rounds);
const only = args.only?.split(',').map((name) => name.trim()).filter(Boolean);
const unknown = only?.find((name) => !(MECHANISMS as readonly string[]).includes(name));
if (unknown !== undefined) throw new Error(`--only names "${unknown}": expected some of ${MECHANISMS.join(', ')}`);
const mechanisms = (only ?? MECHANISMS) as readonly Mechanism[];
const out = args.out ?? join(root, 'test-output', `mechanisms-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);

/** What `bench/saga.ts --json` puts in `summary`, and the orders refused at saturation (a run with any is suspect). */
interface Summary {
  sagasPerSecond: number;
  p50AtRate: number;
  p50Serial: number | null;
  nodeCpuMsPerSaga: number;
  rejected: number;
}

type Variant = 'baseline' | Mechanism;

interface Run {
  round: number;
  variant: Variant;
  seconds: number;
  summary?: Summary;
  error?: string;
}

const sagaArgs = [
  '--json',
  '--no-work',
  '--seconds', args.seconds,
  '--rate-seconds', args['rate-seconds'],
  '--serial-seconds', args['serial-seconds'],
  '--rate', args.rate,
  '--concurrency', args.concurrency,
  ...(args.tcp ? ['--tcp'] : []),
];

/** One saga bench in a child process: its system's services get KIT_WITHOUT through the environment. */
function runSagaBench(variant: Variant): Promise<Summary> {
  const env = { ...process.env };
  delete env.KIT_WITHOUT;
  if (variant !== 'baseline') env.KIT_WITHOUT = variant;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/saga.ts', ...sagaArgs], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.once('error', reject);
    child.once('close', (code) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      try {
        if (code !== 0) throw new Error(`exited with ${code}`);
        const result = JSON.parse(last) as { summary: Omit<Summary, 'rejected'>; saturation: { rejected: number } };
        resolve({ ...result.summary, rejected: result.saturation.rejected });
      } catch (error) {
        reject(new Error(`saga bench ${variant}: ${(error as Error).message}; last line: ${last.slice(0, 200)}`));
      }
    });
  });
}

/** The variants of one round, rotated so each round starts elsewhere and the baseline moves through the session. */
function roundOrder(round: number): Variant[] {
  const variants: Variant[] = ['baseline', ...mechanisms];
  const shift = Math.round((round * variants.length) / rounds) % variants.length;
  return [...variants.slice(shift), ...variants.slice(0, shift)];
}

const fixed = (value: number | null | undefined, digits: number) => (value === null || value === undefined || Number.isNaN(value) ? '–' : value.toFixed(digits));
const mean = (values: number[]) => (values.length === 0 ? NaN : values.reduce((sum, value) => sum + value, 0) / values.length);
const signed = (value: number, digits: number, unit: string) => (Number.isNaN(value) ? '–' : `${value >= 0 ? '+' : ''}${value.toFixed(digits)}${unit}`);

function describeRun(run: Run): string {
  if (!run.summary) return `failed: ${run.error}`;
  const { sagasPerSecond, p50Serial, p50AtRate, nodeCpuMsPerSaga, rejected } = run.summary;
  return `${fixed(sagasPerSecond, 0)} sagas/s${rejected > 0 ? ` (${rejected} orders refused!)` : ''}, p50 serial ${fixed(p50Serial, 1)} ms, p50 at ${args.rate}/s ${fixed(p50AtRate, 1)} ms, Node CPU ${fixed(nodeCpuMsPerSaga, 2)} ms/saga`;
}

type Metric = 'sagasPerSecond' | 'p50Serial' | 'p50AtRate' | 'nodeCpuMsPerSaga';

function values(runs: Run[], variant: Variant, metric: Metric): number[] {
  return runs.filter((run) => run.variant === variant && run.summary).map((run) => run.summary![metric]).filter((value): value is number => value !== null);
}

/** "mean (run, run, run)" */
function cell(all: number[], digits: number): string {
  return all.length === 0 ? '–' : `${fixed(mean(all), digits)} (${all.map((value) => fixed(value, digits)).join(', ')})`;
}

/**
 * What a mechanism pays, from the means with (baseline) and without it: throughput in % of the
 * rate without it, p50s and CPU in ms saved. Positive: the mechanism helps.
 */
function pays(runs: Run[], mechanism: Mechanism) {
  const withIt = (metric: Metric) => mean(values(runs, 'baseline', metric));
  const withoutIt = (metric: Metric) => mean(values(runs, mechanism, metric));
  return {
    throughputPercent: (withIt('sagasPerSecond') / withoutIt('sagasPerSecond') - 1) * 100,
    p50SerialMs: withoutIt('p50Serial') - withIt('p50Serial'),
    p50AtRateMs: withoutIt('p50AtRate') - withIt('p50AtRate'),
    cpuMs: withoutIt('nodeCpuMsPerSaga') - withIt('nodeCpuMsPerSaga'),
  };
}

/** Issue 13's rule: keep a mechanism only if it pays at least 5 % of throughput or 1 ms of a p50. */
function verdict(paid: ReturnType<typeof pays>): string {
  const { throughputPercent, p50SerialMs, p50AtRateMs } = paid;
  if ([throughputPercent, p50SerialMs, p50AtRateMs].every(Number.isNaN)) return 'no data';
  const reasons = [
    throughputPercent >= 5 && `${fixed(throughputPercent, 1)} % throughput`,
    p50SerialMs >= 1 && `${fixed(p50SerialMs, 1)} ms p50 serial`,
    p50AtRateMs >= 1 && `${fixed(p50AtRateMs, 1)} ms p50 at ${args.rate}/s`,
  ].filter(Boolean);
  return reasons.length > 0 ? `keep (${reasons.join(', ')})` : 'remove';
}

function table(runs: Run[]): string {
  const header = [
    '| without | sagas/s | pays | p50 serial, ms | pays | p50 at ' + args.rate + '/s, ms | pays | Node CPU, ms/saga | pays | verdict |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  const columns = (variant: Variant) => [
    cell(values(runs, variant, 'sagasPerSecond'), 0),
    cell(values(runs, variant, 'p50Serial'), 1),
    cell(values(runs, variant, 'p50AtRate'), 1),
    cell(values(runs, variant, 'nodeCpuMsPerSaga'), 2),
  ];
  const [throughput, serial, atRate, cpu] = columns('baseline');
  const rows = [`| nothing (baseline) | ${throughput} | | ${serial} | | ${atRate} | | ${cpu} | | |`];
  for (const mechanism of mechanisms) {
    const [t, s, r, c] = columns(mechanism);
    const paid = pays(runs, mechanism);
    rows.push(
      `| ${mechanism} | ${t} | ${signed(paid.throughputPercent, 1, ' %')} | ${s} | ${signed(paid.p50SerialMs, 1, ' ms')} | ${r} | ${signed(paid.p50AtRateMs, 1, ' ms')} | ${c} | ${signed(paid.cpuMs, 2, ' ms')} | ${verdict(paid)} |`,
    );
  }
  return [...header, ...rows].join('\n');
}

function save(runs: Run[], finished: boolean): void {
  mkdirSync(dirname(out), { recursive: true });
  const options = { rounds, mechanisms, sagaArgs };
  const results = finished ? Object.fromEntries(mechanisms.map((mechanism) => [mechanism, { pays: pays(runs, mechanism), verdict: verdict(pays(runs, mechanism)) }])) : undefined;
  writeFileSync(out, `${JSON.stringify({ options, finished, runs, results }, null, 2)}\n`);
}

async function main(): Promise<void> {
  const runs: Run[] = [];
  const total = rounds * (mechanisms.length + 1);
  const started = performance.now();
  console.log(`${rounds} round(s) of the baseline and ${mechanisms.length} mechanism(s) switched off: ${total} saga benches (${sagaArgs.join(' ')})`);
  for (let round = 0; round < rounds; round++) {
    for (const variant of roundOrder(round)) {
      const runStarted = performance.now();
      const run: Run = { round: round + 1, variant, seconds: 0 };
      try {
        run.summary = await runSagaBench(variant);
      } catch (error) {
        run.error = (error as Error).message;
      }
      run.seconds = (performance.now() - runStarted) / 1000;
      runs.push(run);
      save(runs, false); // a long session interrupted still leaves what it measured
      const elapsed = (performance.now() - started) / 1000;
      const left = (elapsed / runs.length) * (total - runs.length);
      console.log(
        `[${runs.length}/${total}] round ${round + 1}, ${variant === 'baseline' ? 'baseline' : `without ${variant}`}: ${describeRun(run)} ` +
          `(${run.seconds.toFixed(0)} s; about ${Math.ceil(left / 60)} min left)`,
      );
    }
  }
  save(runs, true);
  console.log('');
  console.log(table(runs));
  console.log('');
  console.log(
    '"pays": throughput with the mechanism over without it; p50s and Node CPU saved by it (without − with). ' +
      'Verdict by issue 13: keep at ≥ 5 % throughput or ≥ 1 ms of either p50. Compare with the spread of the baseline runs.',
  );
  console.log(`raw results: ${out}`);
  if (runs.some((run) => run.error)) process.exitCode = 1;
}

await main();
