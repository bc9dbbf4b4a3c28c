// Debian's chromium, headless, allowed to read the report folder's files from file:// (so the
// tests can read canvas pixels); shared by report_test.mjs and screenshot.mjs.
import puppeteer from 'puppeteer-core';

export function launch() {
  return puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--allow-file-access-from-files'],
  });
}

// A page 1400 x 900 showing DIR/index.html; for a slide's page, once its tiles are in.
export async function open(browser, dir, onPage = () => {}) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 900 });
  onPage(page);
  await page.goto('file://' + dir + '/index.html');
  await page.waitForFunction(() => !window.IHC_DATA || document.body.dataset.tiles === 'loaded', { timeout: 60000 });
  return page;
}
