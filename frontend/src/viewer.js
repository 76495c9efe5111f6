// Read-only diagrams of a case or of versions: completed elements in green, active ones outlined in blue,
// and any other marker a page asks for (a diff marks elements added, removed and changed).
// Lanes named by a role code show the role's name; the mouse wheel scrolls the page, not the diagram
// (zoom with the buttons, pan by dragging).
import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';
import 'bpmn-js/dist/assets/diagram-js.css';
import 'bpmn-js/dist/assets/bpmn-js.css';
import 'bpmn-js/dist/assets/bpmn-font/css/bpmn.css';
import './diagram.css';

import translate from './translate';

const BPMN_NS = 'http://www.omg.org/spec/BPMN/20100524/MODEL';
const STEP = 1.25;

function readJson(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

function highlight(viewer, ids, marker) {
  const registry = viewer.get('elementRegistry');
  const canvas = viewer.get('canvas');
  ids.filter((id) => registry.get(id)).forEach((id) => canvas.addMarker(id, marker));
}

// The diagram with each lane named by a role code renamed to the role's display name.
function withRoleNames(xml, roles) {
  if (!roles) return xml;
  const doc = new DOMParser().parseFromString(xml, 'application/xml');
  if (doc.getElementsByTagName('parsererror').length) return xml;
  let changed = false;
  [...doc.getElementsByTagNameNS(BPMN_NS, 'lane')].forEach((lane) => {
    const name = (lane.getAttribute('name') || '').trim();
    if (roles[name]) {
      lane.setAttribute('name', roles[name]);
      changed = true;
    }
  });
  return changed ? new XMLSerializer().serializeToString(doc) : xml;
}

function button(label, title, action) {
  const node = document.createElement('button');
  node.type = 'button';
  node.className = 'button small';
  node.textContent = label;
  node.title = title;
  node.setAttribute('aria-label', title);
  node.dataset.zoom = action;
  return node;
}

// Zoom in, zoom out, fit the whole diagram, and back to 100%, in a bar above the canvas.
function controls(container, canvas, texts) {
  const bar = document.createElement('div');
  bar.className = 'diagram-controls';
  bar.setAttribute('role', 'toolbar');
  bar.setAttribute('aria-label', texts.toolbar);
  const zoomBy = (factor) => canvas.zoom(canvas.zoom() * factor, 'auto');
  const actions = {
    in: () => zoomBy(STEP),
    out: () => zoomBy(1 / STEP),
    fit: () => canvas.zoom('fit-viewport', 'auto'),
    reset: () => {
      const { inner } = canvas.viewbox();
      const size = canvas.getSize();
      canvas.viewbox({ x: inner.x - 20, y: inner.y - 20, width: size.width, height: size.height });
    },
  };
  bar.append(button('+', texts.in, 'in'), button('−', texts.out, 'out'),
    button(texts.fitLabel, texts.fit, 'fit'), button('1:1', texts.reset, 'reset'));
  bar.addEventListener('click', (event) => {
    const action = event.target.dataset && event.target.dataset.zoom;
    if (actions[action]) actions[action]();
  });
  container.before(bar);
}

// Each container names the JSON script holding its diagram: {bpmn, completed, active, markers?}.
async function show(container) {
  const data = readJson(container.dataset.diagramSource);
  if (!data) return;
  const texts = readJson('diagram-texts') || {};
  const viewer = new NavigatedViewer({ container, additionalModules: [translate], zoomScroll: { enabled: false } });
  try {
    await viewer.importXML(withRoleNames(data.bpmn, readJson('role-names')));
  } catch (error) {
    container.textContent = error.message;
    container.dataset.state = 'error';
    return;
  }
  const active = data.active || [];
  highlight(viewer, (data.completed || []).filter((id) => !active.includes(id)), 'cf-completed');
  highlight(viewer, active, 'cf-active');
  Object.entries(data.markers || {}).forEach(([id, marker]) => highlight(viewer, [id], marker));
  const canvas = viewer.get('canvas');
  canvas.zoom('fit-viewport', 'auto');
  controls(container, canvas, {
    toolbar: texts.toolbar || '缩放', in: texts.in || '放大', out: texts.out || '缩小',
    fit: texts.fit || '适应窗口', fitLabel: texts.fit_label || '适应', reset: texts.reset || '原始大小',
  });
  let width = container.clientWidth;
  new ResizeObserver(() => { // a rotated phone, a narrower window: fit again
    if (container.clientWidth === width) return;
    width = container.clientWidth;
    canvas.resized();
    canvas.zoom('fit-viewport', 'auto');
  }).observe(container);
  container.dataset.state = 'ready';
}

document.querySelectorAll('[data-diagram-source]').forEach((container) => show(container));
