// Read-only diagram of a case or a version: completed elements in green, active ones outlined in blue.
import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';
import 'bpmn-js/dist/assets/diagram-js.css';
import 'bpmn-js/dist/assets/bpmn-js.css';
import 'bpmn-js/dist/assets/bpmn-font/css/bpmn.css';
import './diagram.css';

import translate from './translate';

function readJson(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

function highlight(viewer, ids, marker) {
  const registry = viewer.get('elementRegistry');
  const canvas = viewer.get('canvas');
  ids.filter((id) => registry.get(id)).forEach((id) => canvas.addMarker(id, marker));
}

async function show() {
  const container = document.getElementById('diagram');
  const data = readJson('diagram-data');
  if (!container || !data) return;
  const viewer = new NavigatedViewer({ container, additionalModules: [translate] });
  try {
    await viewer.importXML(data.bpmn);
  } catch (error) {
    container.textContent = error.message;
    container.dataset.state = 'error';
    return;
  }
  const active = data.active || [];
  highlight(viewer, (data.completed || []).filter((id) => !active.includes(id)), 'cf-completed');
  highlight(viewer, active, 'cf-active');
  viewer.get('canvas').zoom('fit-viewport', 'auto');
  window.addEventListener('resize', () => viewer.get('canvas').zoom('fit-viewport', 'auto'));
  container.dataset.state = 'ready';
}

show();
