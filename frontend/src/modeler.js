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

const data = JSON.parse(document.getElementById('modeler-data').textContent);
const modeler = new BpmnModeler({
  container: '#canvas',
  propertiesPanel: { parent: '#properties' },
  additionalModules: [BpmnPropertiesPanelModule, BpmnPropertiesProviderModule, cadreFlowProvider, translate],
  moddleExtensions: { spiffworkflow },
});
window.cadreflowModeler = modeler; // lets browser tests reach the diagram

let marked = [];

function clearErrors() {
  const canvas = modeler.get('canvas');
  marked.forEach((id) => canvas.removeMarker(id, 'cf-error'));
  modeler.get('overlays').remove({ type: 'cf-error' });
  marked = [];
}

function markErrors(errors) {
  const registry = modeler.get('elementRegistry');
  const canvas = modeler.get('canvas');
  const overlays = modeler.get('overlays');
  const byElement = new Map();
  errors.filter((e) => e.element_id && registry.get(e.element_id)).forEach((e) => {
    byElement.set(e.element_id, [...(byElement.get(e.element_id) || []), e.message]);
  });
  byElement.forEach((messages, id) => {
    canvas.addMarker(id, 'cf-error');
    marked.push(id);
    const note = document.createElement('ul');
    note.className = 'cf-error-overlay';
    messages.forEach((message) => note.append(Object.assign(document.createElement('li'), { textContent: message })));
    overlays.add(id, 'cf-error', { position: { bottom: -6, left: 0 }, html: note });
  });
}

async function deploy(button) {
  clearErrors();
  button.disabled = true;
  showResult({ state: 'busy', text: data.labels.deploying });
  try {
    const { xml } = await modeler.saveXML({ format: true });
    const body = new FormData();
    body.append('bpmn', xml);
    Array.from(document.getElementById('dmn-files').files).forEach((file) => body.append('dmn', file));
    const token = document.querySelector('meta[name="csrf-token"]').content;
    const response = await fetch(data.deployUrl, { method: 'POST', body, headers: { 'X-CSRFToken': token },
      credentials: 'same-origin' });
    const result = await response.json();
    if (!result.ok) markErrors(result.errors || []);
    showResult({ state: result.ok ? 'ok' : 'error', result, labels: data.labels, versionUrl: data.versionUrl });
  } catch (error) {
    showResult({ state: 'error', result: { message: error.message, errors: [] }, labels: data.labels });
  } finally {
    button.disabled = false;
  }
}

async function open() {
  await modeler.importXML(data.xml);
  modeler.get('canvas').zoom('fit-viewport', 'auto');
  document.getElementById('canvas').dataset.state = 'ready';
  const button = document.getElementById('deploy');
  button.addEventListener('click', () => deploy(button));
}

open().catch((error) => showResult({ state: 'error', result: { message: error.message, errors: [] },
  labels: data.labels }));
