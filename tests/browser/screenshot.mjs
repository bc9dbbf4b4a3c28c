// A screenshot of a report folder in headless Chromium, as a person sees it (README, notes):
//   node tests/browser/screenshot.mjs DIR OUT.png [X Y W H]
// X Y W H: a region in the report's image pixels (analysis resolution) to zoom to first.
import { launch, open } from './browser.mjs';

const [dir, out, ...region] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await open(browser, dir);
  if (region.length === 4) {
    await page.evaluate((r) => window.IHC_VIEW.zoomTo(...r.map(Number)), region);
    await page.evaluate(() => new Promise((done) => {
      window.IHC_VIEW.viewer.addOnceHandler('animation-finish', () => setTimeout(done, 300));
      setTimeout(done, 4000);
    }));
    await page.waitForFunction(() => window.IHC_VIEW.viewer.world.getItemAt(0).getFullyLoaded(), { timeout: 60000 });
  }
  await page.screenshot({ path: out });
} finally {
  await browser.close();
}
