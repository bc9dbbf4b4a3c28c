// How long the overlay takes to draw, at the zoom where the most cells are on screen and at home
// (heatmap): node tests/browser/measure.mjs DIR. Prints milliseconds per redraw (median of 15).
import { launch, open } from './browser.mjs';

const browser = await launch();
try {
  const page = await open(browser, process.argv[2]);
  const result = await page.evaluate(() => {
    const V = window.IHC_VIEW, v = V.viewer, C = window.IHC_CELLS;
    const time = () => {
      const t = [];
      for (let k = 0; k < 15; ++k) { const t0 = performance.now(); V.redraw(); t.push(performance.now() - t0); }
      return t.sort((a, b) => a - b)[7];
    };
    const home = time();
    // Centre on the middle cell, at the lowest zoom that still draws cells.
    const mid = Math.floor(C.x.length / 2);
    v.viewport.panTo(v.viewport.imageToViewportCoordinates(C.x[mid], C.y[mid]), true);
    v.viewport.zoomTo(v.viewport.imageToViewportZoom(V.CELL_ZOOM * 1.01), null, true);
    v.viewport.update();
    let onScreen = 0;
    const w = v.container.clientWidth, h = v.container.clientHeight;
    for (let k = 0; k < C.x.length; ++k) {
      const p = V.cellOnScreen(k);
      if (p.x >= 0 && p.y >= 0 && p.x < w && p.y < h) ++onScreen;
    }
    return { cells: C.x.length, home_ms: home, cells_ms: time(), on_screen: onScreen };
  });
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
