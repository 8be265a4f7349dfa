/**
 * The dashboard's browser test drives a Chromium-family browser the machine already has (never a
 * downloaded build): the one CHROMIUM_PATH names, else the usual names on PATH. Without one it is
 * skipped with one line saying how to enable it, except under CI, where a missing browser fails.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { browserForTests, findBrowser } from './support/browser.ts';

const dir = mkdtempSync(join(tmpdir(), 'browser-discovery-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function executable(path: string): string {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, '#!/bin/sh\n');
  chmodSync(path, 0o755);
  return path;
}

describe('finding a browser', () => {
  test('CHROMIUM_PATH is used when it names an executable', () => {
    const chrome = executable(join(dir, 'named', 'my-chrome'));
    expect(findBrowser({ CHROMIUM_PATH: chrome, PATH: '' })).toBe(chrome);
  });

  test('CHROMIUM_PATH naming nothing runnable stops with one line naming the variable', () => {
    expect(() => findBrowser({ CHROMIUM_PATH: join(dir, 'nothing-here'), PATH: '' })).toThrow(/^CHROMIUM_PATH=.*nothing-here is not an executable file$/);
  });

  test('without CHROMIUM_PATH, a usual name on PATH is found (google-chrome, chromium-browser...)', () => {
    const chrome = executable(join(dir, 'path-a', 'google-chrome'));
    const chromium = executable(join(dir, 'path-b', 'chromium-browser'));
    expect(findBrowser({ PATH: [join(dir, 'empty'), join(dir, 'path-a')].join(':') })).toBe(chrome);
    expect(findBrowser({ PATH: join(dir, 'path-b') })).toBe(chromium);
  });

  test('with no browser anywhere: skipped with how to enable it, but under CI it fails', () => {
    const none = { PATH: join(dir, 'empty') };
    const outcome = browserForTests(none, []);
    expect(outcome).toEqual({ skip: expect.stringMatching(/CHROMIUM_PATH/) });
    expect(() => browserForTests({ ...none, CI: 'true' }, [])).toThrow(/CI.*CHROMIUM_PATH/);
    expect(browserForTests({ ...none, CI: 'false' }, [])).toEqual({ skip: expect.any(String) });
  });
});
