// Fit the diagram into the part of the canvas the palette leaves free, and the zoom buttons beside it.
const MARGIN = 16;

function paletteBox(canvas) {
  const container = canvas.getContainer();
  const palette = container.querySelector('.djs-palette');
  if (!palette) return { right: 0, bottom: 0 };
  const outer = container.getBoundingClientRect();
  const box = palette.getBoundingClientRect();
  return { right: box.right - outer.left, bottom: box.bottom - outer.top };
}

// The height the zoom buttons take at the bottom of the canvas (kept free too).
function controlsHeight(canvas) {
  const stage = canvas.getContainer().closest('.modeler-stage');
  const controls = stage && stage.querySelector('.zoom-controls');
  return controls ? controls.getBoundingClientRect().height + MARGIN : 0;
}

// The free areas of the canvas: right of the palette, and below it (the larger on a narrow screen).
function freeAreas(size, palette, bottom) {
  const right = { left: palette.right + MARGIN, top: MARGIN };
  const below = { left: MARGIN, top: palette.bottom + MARGIN };
  return [right, below].map((area) => ({ ...area, width: size.width - area.left - MARGIN,
    height: size.height - area.top - MARGIN - bottom })).filter((area) => area.width > 40 && area.height > 40);
}

// The whole diagram, as large as fits (never above 100%), where neither the palette nor the zoom buttons cover it.
export function fitBesidePalette(canvas) {
  const size = canvas.getSize();
  const inner = canvas.viewbox().inner;
  if (!inner.width || !inner.height || !size.width || !size.height) return;
  const areas = freeAreas(size, paletteBox(canvas), controlsHeight(canvas));
  if (!areas.length) return;
  const scaleIn = (area) => Math.min(area.width / inner.width, area.height / inner.height, 1);
  const area = areas.reduce((best, next) => (scaleIn(next) > scaleIn(best) ? next : best));
  const scale = scaleIn(area);
  const top = area.top + (area.height - inner.height * scale) / 2;
  canvas.viewbox({
    x: inner.x - area.left / scale,
    y: inner.y - top / scale,
    width: size.width / scale,
    height: size.height / scale,
  });
}

function sameView(a, b) {
  return b && Math.abs(a.x - b.x) < 1 && Math.abs(a.y - b.y) < 1 && Math.abs(a.scale - b.scale) < 1e-3;
}

// The +, − and fit buttons. When the canvas changes size (rotation, a narrower window) the diagram is fitted
// again, unless the designer has zoomed or scrolled since the last fit: then the view stays where they put it.
export function zoomControls(modeler) {
  const canvas = modeler.get('canvas');
  const zoomScroll = modeler.get('zoomScroll');
  let fitted = canvas.viewbox();
  const fit = () => {
    fitBesidePalette(canvas);
    fitted = canvas.viewbox();
  };
  document.getElementById('zoom-in').addEventListener('click', () => zoomScroll.stepZoom(1));
  document.getElementById('zoom-out').addEventListener('click', () => zoomScroll.stepZoom(-1));
  document.getElementById('zoom-fit').addEventListener('click', fit);
  let width = canvas.getContainer().clientWidth;
  new ResizeObserver(() => {
    const now = canvas.getContainer().clientWidth;
    if (now === width) return;
    width = now;
    const untouched = sameView(canvas.viewbox(), fitted);
    canvas.resized();
    if (untouched) fit();
  }).observe(canvas.getContainer());
}
