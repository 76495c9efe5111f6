// The designer's modeler: bpmn-js with the properties panel and the CadreFlow group; validate and deploy.
import BpmnModeler from 'bpmn-js/lib/Modeler';
import { BpmnPropertiesPanelModule, BpmnPropertiesProviderModule } from 'bpmn-js-properties-panel';
import 'bpmn-js/dist/assets/diagram-js.css';
import 'bpmn-js/dist/assets/bpmn-js.css';
import 'bpmn-js/dist/assets/bpmn-font/css/bpmn.css';
import '@bpmn-io/properties-panel/dist/assets/properties-panel.css';
import './diagram.css';

import cadreFlowProvider from './cadreflow-provider';
import spiffworkflow from './spiffworkflow.json';
import translate from './translate';
import { showResult } from './deploy-result';
import { fitBesidePalette, zoomControls } from './fit';
import { createProblemMarks } from './problems';

const data = JSON.parse(document.getElementById('modeler-data').textContent);
const modeler = new BpmnModeler({
  container: '#canvas',
  propertiesPanel: { parent: '#properties' },
  additionalModules: [BpmnPropertiesPanelModule, BpmnPropertiesProviderModule, cadreFlowProvider, translate],
  moddleExtensions: { spiffworkflow },
  cadreflow: { previewUrl: data.previewUrl, labels: data.labels },
});
window.cadreflowModeler = modeler; // lets browser tests reach the diagram

const marks = createProblemMarks(modeler);
const buttons = () => [document.getElementById('validate'), document.getElementById('deploy')];

function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

// The version the diagram on the canvas was edited from (0: a new process); deploy refuses it when another
// version was deployed since, and a deploy here moves it on.
let baseVersion = data.baseVersion;

async function post(url) {
  const { xml } = await modeler.saveXML({ format: true });
  const body = new FormData();
  body.append('bpmn', xml);
  Array.from(document.getElementById('dmn-files').files).forEach((file) => body.append('dmn', file));
  const response = await fetch(url, { method: 'POST', body, headers: { 'X-CSRFToken': csrfToken() },
    credentials: 'same-origin' });
  if (!(response.headers.get('Content-Type') || '').includes('json')) {
    return { ok: false, message: `HTTP ${response.status}`, errors: [] };
  }
  return response.json();
}

// Validate (kind "validate") or deploy (kind "deploy"): either way every problem is listed and marked.
async function submit(kind) {
  marks.clear();
  buttons().forEach((b) => { b.disabled = true; });
  const show = (id) => marks.show(id);
  showResult({ state: 'busy', kind, text: kind === 'validate' ? data.labels.validating : data.labels.deploying });
  try {
    const url = kind === 'validate' ? data.validateUrl : `${data.deployUrl}?base_version=${baseVersion}`;
    const result = await post(url);
    // Deployed, or equal to the newest: the canvas is now that version (equal to an older one, it is not).
    if (kind === 'deploy' && result.ok && result.version === result.newest) baseVersion = result.newest;
    marks.mark([...(result.errors || []), ...(result.warnings || [])]);
    showResult({ state: result.ok ? 'ok' : 'error', kind, result, labels: data.labels, urls: data, onShow: show });
  } catch (error) {
    showResult({ state: 'error', kind, result: { message: error.message, errors: [] }, labels: data.labels });
  } finally {
    buttons().forEach((b) => { b.disabled = false; });
  }
}

async function open() {
  await modeler.importXML(data.xml);
  fitBesidePalette(modeler.get('canvas'));
  zoomControls(modeler);
  document.getElementById('validate').addEventListener('click', () => submit('validate'));
  document.getElementById('deploy').addEventListener('click', () => submit('deploy'));
  document.getElementById('canvas').dataset.state = 'ready';
}

open().catch((error) => showResult({ state: 'error', result: { message: error.message, errors: [] },
  labels: data.labels }));
