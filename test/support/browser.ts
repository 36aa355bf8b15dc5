// The dashboard tests' browser: Debian's Chromium through playwright-core, a page signed in as a person signs in,
// answers read the way the page renders them (asynchronously), and full-page screenshots kept in test/output/.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';

const output = join(__dirname, '..', 'output');

export async function launchChromium(): Promise<Browser> {
  mkdirSync(output, { recursive: true });
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Signs in at the dashboard's sign-in page with an API token, as a person pastes one. */
export async function signIn(p: Page, url: string, token: string): Promise<void> {
  await p.goto(`${url}/`);
  await p.getByLabel('API token').fill(token);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.locator('[data-testid=user]').waitFor();
}

/** Waits until the element shows this text (the page renders answers asynchronously: never read it just once). */
export async function showsText(locator: Locator, text: string | RegExp, timeout = 15_000): Promise<void> {
  await locator.filter({ hasText: text }).first().waitFor({ timeout });
}

/** A full-page screenshot, test/output/web-<name>.png, kept as the test's artifact. */
export const shot = (p: Page, name: string) => p.screenshot({ path: join(output, `web-${name}.png`), fullPage: true });

/** The job's state as the page shows it. */
export const shownState = (p: Page) => p.locator('article.job').getAttribute('data-state');
