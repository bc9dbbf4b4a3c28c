// ihcscore report viewer: the slide (OpenSeadragon over the Deep Zoom tiles the engine wrote),
// the analysis as switchable overlays drawn on one canvas, and the panel with the numbers.
// Data: window.IHC_DATA (data.js: report, pyramid, tile list, ROI, flagged areas) and
// window.IHC_CELLS (cells.js: one entry per detected cell, analysis pixels). Runs from file://.
(function () {
  'use strict';
  const D = window.IHC_DATA;
  const C = window.IHC_CELLS;
  const R = D.report;
  const P = D.pyramid;
  // Class colours, as `ihcscore markup` draws them: 0 blue, 1+ yellow, 2+ orange, 3+ red.
  const CLASS_RGB = [[60, 110, 230], [240, 210, 40], [245, 140, 20], [210, 20, 20]];
  const CLASS_NAMES = ['0', '1+', '2+', '3+'];
  const LEFT_OUT_RULES = [[1, 'small nucleus'], [2, 'large nucleus'], [4, 'few neighbours'], [8, 'elongated nucleus'],
    [16, 'image edge'], [32, 'haematoxylin ridges'], [128, 'outside ROI']];
  const FLAG_FOLD = 1, FLAG_FOCUS = 2, FLAG_PIGMENT = 4, FLAG_CYTOPLASMIC = 8;
  const HEAT_UM = 200;                      // heatmap square side
  const heatPx = Math.max(16, Math.round(HEAT_UM / P.mpp));  // analysis pixels
  const CELL_ZOOM = 0.2;                    // screen px per image px from which cells are drawn
  const n = C.x.length;

  // ---- tiles that exist (tissue only); the others are a blank tile, so nothing fails to load.
  const tiles = {};
  for (const level of Object.keys(D.tiles)) tiles[level] = new Set(D.tiles[level]);

  // ---- cells bucketed for drawing only what is on screen
  const BUCKET = 256;
  const bucketsX = Math.ceil(P.width / BUCKET), bucketsY = Math.ceil(P.height / BUCKET);
  const buckets = new Map();
  for (let k = 0; k < n; ++k) {
    const key = Math.floor(C.y[k] / BUCKET) * bucketsX + Math.floor(C.x[k] / BUCKET);
    let b = buckets.get(key);
    if (!b) buckets.set(key, (b = []));
    b.push(k);
  }

  // ---- heatmap squares: counted cells not left out as fold / out of focus
  const heat = new Map();
  for (let k = 0; k < n; ++k) {
    if (C.c[k] > 3 || (C.f[k] & (FLAG_FOLD | FLAG_FOCUS))) continue;
    const gx = Math.floor(C.x[k] / heatPx), gy = Math.floor(C.y[k] / heatPx);
    const key = gy * 1e6 + gx;
    let h = heat.get(key);
    if (!h) heat.set(key, (h = { gx, gy, cells: 0, complete: 0, intense: 0 }));
    ++h.cells;
    if (C.c[k] >= 2) ++h.complete;
    if (C.c[k] === 3) ++h.intense;
  }
  const HEAT_MIN_CELLS = 10;

  const viewer = OpenSeadragon({
    id: 'viewer',
    showNavigationControl: false,
    showNavigator: false,
    maxZoomPixelRatio: 4,
    drawer: 'canvas',  // WebGL would need CORS-clean images, which file:// pages do not give
    visibilityRatio: 0.5,
    minZoomImageRatio: 0.4,  // zoomed out past the home view the heatmap shows on small slides too
    tileSources: {
      width: P.width,
      height: P.height,
      tileSize: P.tile,
      tileOverlap: 0,
      minLevel: 0,
      maxLevel: P.max_level,
      getTileUrl: (level, x, y) => {
        const name = x + '_' + y;
        return tiles[level] && tiles[level].has(name) ? 'slide_files/' + level + '/' + name + '.jpg' : 'blank.jpg';
      },
    },
  });

  document.getElementById('viewer').style.background = 'rgb(' + P.glass.join(',') + ')';
  const overlay = document.createElement('canvas');
  overlay.id = 'overlay';
  viewer.canvas.appendChild(overlay);
  const ctx = overlay.getContext('2d');
  const state = { cells: true, leftout: false, heat: true, metric: 'complete', roi: true, flags: true };

  function imageZoom() { return viewer.viewport.viewportToImageZoom(viewer.viewport.getZoom(true)); }
  function toScreen(x, y) {
    return viewer.viewport.imageToViewerElementCoordinates(new OpenSeadragon.Point(x, y));
  }
  function heatColour(fraction) {  // white-yellow-red
    const t = Math.max(0, Math.min(1, fraction / 0.5));
    return [255, Math.round(255 - 200 * t), Math.round(200 - 200 * t)];
  }

  function redraw() {
    const w = viewer.container.clientWidth, h = viewer.container.clientHeight;
    if (overlay.width !== w || overlay.height !== h) { overlay.width = w; overlay.height = h; }
    ctx.clearRect(0, 0, w, h);
    const zoom = imageZoom();
    const topLeft = viewer.viewport.viewerElementToImageCoordinates(new OpenSeadragon.Point(0, 0));
    const bottomRight = viewer.viewport.viewerElementToImageCoordinates(new OpenSeadragon.Point(w, h));
    if (state.heat && zoom < CELL_ZOOM) {
      for (const sq of heat.values()) {
        if (sq.cells < HEAT_MIN_CELLS) continue;
        const a = toScreen(sq.gx * heatPx, sq.gy * heatPx), b = toScreen((sq.gx + 1) * heatPx, (sq.gy + 1) * heatPx);
        if (b.x < 0 || b.y < 0 || a.x > w || a.y > h) continue;
        const [r, g, bl] = heatColour((state.metric === 'intense' ? sq.intense : sq.complete) / sq.cells);
        ctx.fillStyle = 'rgba(' + r + ',' + g + ',' + bl + ',0.55)';
        ctx.fillRect(a.x, a.y, b.x - a.x + 0.5, b.y - a.y + 0.5);
      }
    }
    if ((state.cells || state.leftout) && zoom >= CELL_ZOOM) {
      const radius = Math.max(2, (2.5 / P.mpp) * zoom);  // a nucleus-sized dot: the membrane stays visible
      const bx0 = Math.max(0, Math.floor(topLeft.x / BUCKET) - 1), bx1 = Math.min(bucketsX - 1, Math.floor(bottomRight.x / BUCKET) + 1);
      const by0 = Math.max(0, Math.floor(topLeft.y / BUCKET) - 1), by1 = Math.min(bucketsY - 1, Math.floor(bottomRight.y / BUCKET) + 1);
      // One path per class (and one for the rings): a fill per class, not per cell.
      const paths = [new Path2D(), new Path2D(), new Path2D(), new Path2D()], rings = new Path2D();
      const artefacts = new Path2D();  // scored 0 for pigment or a cytoplasmic pattern: a purple ring too
      // Image to screen is a scale and a shift (the viewer does not rotate): once per redraw.
      const o = toScreen(0, 0), unit = toScreen(1000, 1000);
      const sx = (unit.x - o.x) / 1000, sy = (unit.y - o.y) / 1000;
      for (let by = by0; by <= by1; ++by)
        for (let bx = bx0; bx <= bx1; ++bx) {
          const b = buckets.get(by * bucketsX + bx);
          if (!b) continue;
          for (const k of b) {
            const counted = C.c[k] <= 3;
            if (counted ? !state.cells : !state.leftout) continue;
            const px = o.x + C.x[k] * sx, py = o.y + C.y[k] * sy;
            // Left out, or in a flagged area: a grey ring.
            const path = counted && !(C.f[k] & (FLAG_FOLD | FLAG_FOCUS)) ? paths[C.c[k]] : rings;
            path.moveTo(px + radius, py);
            path.arc(px, py, radius, 0, 2 * Math.PI);
            if (counted && (C.f[k] & (FLAG_PIGMENT | FLAG_CYTOPLASMIC))) {
              artefacts.moveTo(px + radius * 1.6, py);
              artefacts.arc(px, py, radius * 1.6, 0, 2 * Math.PI);
            }
          }
        }
      paths.forEach((path, c) => { ctx.fillStyle = 'rgb(' + CLASS_RGB[c].join(',') + ')'; ctx.fill(path); });
      ctx.strokeStyle = 'rgb(128,128,128)';
      ctx.lineWidth = Math.max(1, radius / 3);
      ctx.stroke(rings);
      ctx.strokeStyle = 'rgb(150,0,170)';
      ctx.stroke(artefacts);
    }
    if (state.flags) {
      ctx.strokeStyle = 'rgb(200,0,200)';
      ctx.fillStyle = 'rgba(200,0,200,0.15)';
      ctx.lineWidth = 1;
      for (const [x, y, fw, fh] of D.flagged) {
        const a = toScreen(x, y), b = toScreen(x + fw, y + fh);
        ctx.fillRect(a.x, a.y, b.x - a.x, b.y - a.y);
        ctx.strokeRect(a.x, a.y, b.x - a.x, b.y - a.y);
      }
    }
    if (state.roi) {
      // Scored region solid; what it leaves out (QuPath's Ignore*, ImageScope's negative regions) dashed.
      ctx.lineWidth = 2;
      const rings = (list, colour, dash) => {
        ctx.strokeStyle = colour;
        ctx.setLineDash(dash);
        for (const ring of list || []) {
          ctx.beginPath();
          ring.forEach(([x, y], i) => { const p = toScreen(x, y); if (i) ctx.lineTo(p.x, p.y); else ctx.moveTo(p.x, p.y); });
          ctx.closePath();
          ctx.stroke();
        }
      };
      rings(D.roi, 'rgb(0,170,170)', []);
      rings(D.roi_excluded, 'rgb(120,120,120)', [6, 4]);
      ctx.setLineDash([]);
    }
  }

  // Zooms to a rectangle of analysis pixels.
  function zoomTo(x, y, w, h) {
    const margin = Math.max(w, h) * 0.25;
    viewer.viewport.fitBounds(viewer.viewport.imageToViewportRectangle(x - margin, y - margin, w + 2 * margin, h + 2 * margin));
  }

  // A click on a heatmap square (at heatmap zoom) zooms to it.
  viewer.addHandler('canvas-click', (e) => {
    if (!e.quick || !state.heat || imageZoom() >= CELL_ZOOM) return;
    const p = viewer.viewport.viewerElementToImageCoordinates(e.position);
    const gx = Math.floor(p.x / heatPx), gy = Math.floor(p.y / heatPx);
    const sq = heat.get(gy * 1e6 + gx);
    if (!sq || sq.cells < HEAT_MIN_CELLS) return;
    e.preventDefaultAction = true;
    zoomTo(gx * heatPx, gy * heatPx, heatPx, heatPx);
  });
  for (const ev of ['open', 'animation', 'animation-finish', 'resize', 'update-viewport']) viewer.addHandler(ev, redraw);

  // ---- toolbar
  function bind(id, key, value) {
    const el = document.getElementById(id);
    el.addEventListener('change', () => { state[key] = value ? el.value : el.checked; redraw(); });
  }
  bind('t-cells', 'cells'); bind('t-leftout', 'leftout'); bind('t-heat', 'heat'); bind('t-roi', 'roi'); bind('t-flags', 'flags');
  bind('heat-metric', 'metric', true);
  document.getElementById('legend').innerHTML = CLASS_NAMES.map((name, c) =>
    '<span><i style="background:rgb(' + CLASS_RGB[c].join(',') + ')"></i>' + name + '</span>').join('') +
    '<span><i style="border:2px solid rgb(128,128,128);width:6px;height:6px"></i>left out</span>' +
    '<span><i style="border:2px solid rgb(150,0,170);width:6px;height:6px"></i>0 for pigment / cytoplasmic</span>' +
    '<span>heatmap: <i style="border-radius:0;background:rgb(255,255,200)"></i>0 % ' +
    '<i style="border-radius:0;background:rgb(255,155,100)"></i>25 % <i style="border-radius:0;background:rgb(255,55,0)"></i>' +
    '50 % or more (squares of ' + HEAT_UM + ' µm with at least ' + HEAT_MIN_CELLS + ' tumour cells)</span>';

  // ---- panel
  const esc = (s) => String(s).replace(/[&<>"]/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[ch]));
  const pct = (v) => (v === undefined || v === null ? 'n/a' : Number(v).toFixed(1) + ' %');
  const panel = document.getElementById('panel');
  const d = R.decisive || {};
  const warnings = R.warnings || [];
  let html = '<div class="small">' + esc(R.slide.path) + '</div>';
  html += '<h1 id="score">HER2 ' + esc(R.score) + '</h1>';
  html += '<div>' + esc(R.category) + ' &middot; ' + esc(R.guideline) + (R.specimen ? ' (' + esc(R.specimen) + ')' : '') + '</div>';
  if (R.roi) {  // the score covers the region of interest only: said where the score is read
    const left = R.roi.excluded_polygons || 0;
    html += '<div class="small">region of interest ' + esc(R.roi.file) + ', ' + Number(R.roi.area_mm2).toFixed(3) + ' mm²' +
      (left ? ' (' + left + (left === 1 ? ' annotation' : ' annotations') + ' left out)' : '') + '</div>';
  }
  if (R.not_evaluable_reason) html += '<div class="borderline">' + esc(R.not_evaluable_reason) + '</div>';
  if (d.metric) {
    html += '<h2>Decisive</h2><div>' + esc(d.metric) + ' <b>' + pct(d.percent) + '</b> vs threshold ' + pct(d.threshold);
    if (d.ci95) html += '<br>95 % interval ' + pct(d.ci95[0]) + ' &ndash; ' + pct(d.ci95[1]) + ' <span class="small">(' + esc(d.ci_method) + ')</span>';
    if (d.borderline) html += '<br><span class="borderline">borderline: the threshold lies inside the interval; review</span>';
    html += '</div>';
  }
  if (warnings.length) {
    html += '<h2>Warnings</h2>';
    warnings.forEach((w, i) => { html += '<div class="warning" data-warning="' + i + '">' + esc(w) + '</div>'; });
  }
  html += '<h2>Tumour cells</h2><table>';
  html += '<tr><td>counted</td><td class="num">' + R.cells.total + '</td></tr>';
  for (const c of CLASS_NAMES) html += '<tr><td>' + c + '</td><td class="num">' + pct(R.percent[c]) + '</td></tr>';
  html += '<tr><td>complete (2+, 3+)</td><td class="num">' + pct(R.percent.complete) + '</td></tr>';
  html += '<tr><td>complete and intense (3+)</td><td class="num">' + pct(R.percent.complete_intense) + '</td></tr>';
  html += '<tr><td>any membrane</td><td class="num">' + pct(R.percent.any_membrane) + '</td></tr>';
  html += '<tr><td>detected, all</td><td class="num">' + R.cells.detected + '</td></tr></table>';
  html += '<h2>Per-cell intensity (DAB OD)</h2><canvas class="hist" id="hist-intensity" width="640" height="220"></canvas>';
  html += '<h2>Per-cell completeness</h2><canvas class="hist" id="hist-completeness" width="640" height="220"></canvas>';
  html += '<h2>Stains</h2><div class="small">haematoxylin ' + esc(R.stains.hematoxylin.join(', ')) + '<br>DAB ' +
    esc(R.stains.dab.join(', ')) + '<br>source ' + esc(R.stains.source) + '</div>';
  html += '<h2>Settings</h2><div class="small">analysis ' + R.mpp_analysis + ' µm/px, ' + esc(R.slide.reader) +
    ' reader, ' + R.threads + ' threads, ' + R.elapsed_s + ' s<br>thresholds ' + esc(JSON.stringify(R.thresholds)) +
    '<br>ihcscore ' + esc(R.version) + '</div>';
  panel.innerHTML = html;

  // Warnings zoom to what they are about: flagged areas, or the first cell of the pattern named.
  panel.querySelectorAll('.warning').forEach((el) => el.addEventListener('click', () => {
    const text = warnings[Number(el.dataset.warning)];
    if (/focus|fold/i.test(text) && D.flagged.length) {
      const [x, y, fw, fh] = D.flagged[0];
      return zoomTo(x, y, fw, fh);
    }
    const flag = /pigment/i.test(text) ? FLAG_PIGMENT : /cytoplasm/i.test(text) ? FLAG_CYTOPLASMIC : 0;
    for (let k = 0; k < n && flag; ++k)
      if (C.f[k] & flag) return zoomTo(C.x[k] - 50, C.y[k] - 50, 100, 100);
  }));

  // Histograms of the counted cells with the guideline's threshold lines.
  function histogram(id, values, lo, hi, bins, lines, unit) {
    const cv = document.getElementById(id), g = cv.getContext('2d');
    const counts = new Array(bins).fill(0);
    for (const v of values) counts[Math.max(0, Math.min(bins - 1, Math.floor(((v - lo) / (hi - lo)) * bins)))]++;
    const top = Math.max(1, ...counts), W = cv.width, H = cv.height - 24;
    g.fillStyle = '#789';
    counts.forEach((c, i) => { const bh = (c / top) * (H - 4); g.fillRect((i * W) / bins, H - bh, W / bins - 1, bh); });
    g.font = '18px sans-serif';
    g.fillStyle = '#222';
    g.fillText(lo + ' ' + unit, 2, H + 20);
    g.fillText(hi + ' ' + unit, W - 80, H + 20);
    for (const [v, name] of lines) {
      const x = ((v - lo) / (hi - lo)) * W;
      g.strokeStyle = '#c00';
      g.lineWidth = 2;
      g.beginPath(); g.moveTo(x, 0); g.lineTo(x, H); g.stroke();
      g.fillStyle = '#c00';
      g.fillText(name, Math.min(W - 70, x + 3), 18);
    }
  }
  const intensities = [], completeness = [];
  for (let k = 0; k < n; ++k) {
    if (C.c[k] > 3) continue;
    completeness.push(C.p[k] / 100);
    if (C.i[k] > 0) intensities.push(C.i[k] / 1000);
  }
  const t = R.thresholds;
  histogram('hist-intensity', intensities, 0, 1.5, 60, [[t.faint_od, 'faint'], [t.moderate_od, 'moderate'], [t.intense_od, 'intense']], 'OD');
  histogram('hist-completeness', completeness, 0, 1, 18, [[t.partial_min_fraction, 'partial'], [t.complete_fraction, 'complete']], '');

  // For tests and curious users: the viewer, its state, where a cell is on screen.
  window.IHC_VIEW = {
    viewer, state, redraw, zoomTo, heatPx, CELL_ZOOM, CLASS_RGB,
    cellOnScreen: (k) => toScreen(C.x[k], C.y[k]),
    imageOnScreen: (x, y) => toScreen(x, y),
    heatSquares: () => [...heat.values()].filter((sq) => sq.cells >= HEAT_MIN_CELLS),
    overlayPixel: (x, y) => Array.from(ctx.getImageData(Math.round(x), Math.round(y), 1, 1).data),
    leftOutRules: (k) => LEFT_OUT_RULES.filter(([bit]) => C.w[k] & bit).map(([, name]) => name),
  };
  viewer.addHandler('open', () => {
    viewer.world.getItemAt(0).addHandler('fully-loaded-change', (e) => {
      if (e.fullyLoaded) document.body.dataset.tiles = 'loaded';
    });
  });
})();
