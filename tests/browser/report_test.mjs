// Opens a report folder (score --report) in headless Chromium from file:// and checks what a
// pathologist relies on: no console errors, the slide drawn, a known cell in its class colour,
// the overlay toggles, a heatmap click that moves the viewport. Run by tests/test_report_viewer.cpp:
//   node tests/browser/report_test.mjs DIR X Y CLASS SHOT.png
// X, Y: a cell's nucleus in analysis pixels whose class (0-3) the generator knows.
//   node tests/browser/report_test.mjs --index DIR
// checks a batch's DIR/index.html: every link and thumbnail resolves, sorting by score works, and a
// slide's link opens its report. Exit 0: all checks passed; otherwise one line per failed check.
import fs from 'node:fs';
import path from 'node:path';
import { launch, open } from './browser.mjs';

if (process.argv[2] === '--index') process.exit(await checkIndex(process.argv[3]));

const [dir, cx, cy, cls, shot] = process.argv.slice(2);
const X = Number(cx), Y = Number(cy), CLASS = Number(cls);
const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); };

const browser = await launch();
try {
  const errors = [];
  const page = await open(browser, dir, (p) => {
    p.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    p.on('pageerror', (e) => errors.push(String(e)));
    p.on('requestfailed', (r) => errors.push('failed to load ' + r.url()));
  });

  // The slide is drawn: the viewer's canvas holds tissue, not one flat colour.
  const drawn = await page.evaluate(() => {
    const c = window.IHC_VIEW.viewer.drawer.canvas;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let tissue = 0, total = 0;
    for (let i = 0; i < d.length; i += 4 * 97) { ++total; if (d[i] + d[i + 1] + d[i + 2] < 3 * 200) ++tissue; }
    return tissue / total;
  });
  check(drawn > 0.05, 'the slide is not drawn: ' + (drawn * 100).toFixed(1) + ' % of the canvas is tissue');

  // The known cell, zoomed in: the overlay shows its class colour at its nucleus.
  const settle = () => page.evaluate(() => new Promise((done) => {
    const v = window.IHC_VIEW.viewer;
    v.addOnceHandler('animation-finish', () => setTimeout(done, 100));
    setTimeout(done, 3000);
  }));
  await page.evaluate((x, y) => window.IHC_VIEW.zoomTo(x - 40, y - 40, 80, 80), X, Y);
  await settle();
  const colourAt = () => page.evaluate((x, y) => {
    const p = window.IHC_VIEW.imageOnScreen(x, y);
    return window.IHC_VIEW.overlayPixel(p.x, p.y);
  }, X, Y);
  const want = await page.evaluate((c) => window.IHC_VIEW.CLASS_RGB[c], CLASS);
  const got = await colourAt();
  const near = (a, b) => a[3] > 200 && Math.abs(a[0] - b[0]) + Math.abs(a[1] - b[1]) + Math.abs(a[2] - b[2]) < 30;
  check(near(got, want), 'the cell at ' + X + ',' + Y + ' (class ' + CLASS + ') is drawn ' + got + ', not ' + want);

  // Toggles: the cells go and come back.
  await page.click('#t-cells');
  const hidden = await colourAt();
  check(hidden[3] === 0, 'cells still drawn with "cells by class" off: ' + hidden);
  await page.click('#t-cells');
  check(near(await colourAt(), want), 'cells not drawn again with "cells by class" on');

  // Heatmap: zoomed out it is drawn; a click on a square zooms there.
  await page.evaluate(() => { const v = window.IHC_VIEW.viewer; v.viewport.goHome(true); v.viewport.zoomTo(v.viewport.getHomeZoom() * 0.5, null, true); });
  await settle();
  const square = await page.evaluate(() => {
    const V = window.IHC_VIEW, P = window.IHC_DATA.pyramid;
    const inner = (sq) => sq.gx >= 1 && sq.gy >= 1 && (sq.gx + 2) * V.heatPx <= P.width && (sq.gy + 2) * V.heatPx <= P.height;
    const sq = V.heatSquares().filter(inner).sort((a, b) => b.cells - a.cells)[0];
    const p = V.imageOnScreen((sq.gx + 0.5) * V.heatPx, (sq.gy + 0.5) * V.heatPx);
    return { x: p.x, y: p.y, cx: (sq.gx + 0.5) * V.heatPx, cy: (sq.gy + 0.5) * V.heatPx, side: V.heatPx,
      pixel: V.overlayPixel(p.x, p.y) };
  });
  check(square.pixel[3] > 0, 'no heatmap drawn at low zoom');
  const box = await page.$eval('#viewer', (el) => { const r = el.getBoundingClientRect(); return { x: r.x, y: r.y }; });
  await page.mouse.click(box.x + square.x, box.y + square.y);
  await settle();
  const centre = await page.evaluate(() => {
    const v = window.IHC_VIEW.viewer;
    const c = v.viewport.viewportToImageCoordinates(v.viewport.getCenter(true));
    return { x: c.x, y: c.y };
  });
  const moved = Math.hypot(centre.x - square.cx, centre.y - square.cy);
  check(moved < square.side / 4, 'a heatmap click did not centre the square: ' + moved.toFixed(0) + ' px away');

  if (shot) {
    await page.evaluate((x, y) => window.IHC_VIEW.zoomTo(x - 300, y - 200, 600, 400), X, Y);
    await settle();
    await page.screenshot({ path: shot });
  }
  check(errors.length === 0, 'console errors: ' + errors.join(' | '));
} finally {
  await browser.close();
}
for (const f of failures) console.error('report viewer: ' + f);
process.exit(failures.length ? 1 : 0);

async function checkIndex(dir) {
  const failures = [];
  const browser = await launch();
  try {
    const errors = [];
    const page = await open(browser, dir, (p) => {
      p.on('pageerror', (e) => errors.push(String(e)));
      p.on('requestfailed', (r) => errors.push('failed to load ' + r.url()));
    });
    const refs = await page.$$eval('a[href], img[src]', (els) => els.map((e) => e.getAttribute('href') || e.getAttribute('src')));
    if (refs.length === 0) failures.push('the index links to nothing');
    for (const r of refs)
      if (!fs.existsSync(path.join(dir, decodeURIComponent(r)))) failures.push('the index links to a missing ' + r);
    const scores = () => page.$$eval('#slides tbody tr', (rows) => rows.map((tr) => tr.children[3].textContent));
    await page.click('#slides th:nth-child(4)');
    const up = await scores();
    await page.click('#slides th:nth-child(4)');
    const down = await scores();
    if (JSON.stringify(up) !== JSON.stringify([...up].sort()) || JSON.stringify(down) !== JSON.stringify([...up].reverse()))
      failures.push('sorting by score gives ' + up + ' then ' + down);
    const first = refs.find((r) => r.endsWith('/index.html'));
    if (first) {
      await Promise.all([page.waitForNavigation(), page.click('a[href="' + first + '"]')]);
      await page.waitForFunction(() => document.body.dataset.tiles === 'loaded', { timeout: 60000 });
      const title = await page.$eval('#score', (e) => e.textContent);
      if (!/HER2/.test(title)) failures.push('the slide page shows no score: ' + title);
    }
    if (errors.length) failures.push('errors: ' + errors.join(' | '));
  } finally {
    await browser.close();
  }
  for (const f of failures) console.error('report index: ' + f);
  return failures.length ? 1 : 0;
}
