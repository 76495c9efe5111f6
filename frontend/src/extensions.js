// Read and write the spiffworkflow extension elements of a BPMN element (form, decision, assignee).
import { getBusinessObject, is } from 'bpmn-js/lib/util/ModelUtil';

const MULTI = 'properties-panel.multi-command-executor';

export function findExtension(element, type) {
  const extensions = getBusinessObject(element).get('extensionElements');
  return extensions ? extensions.get('values').find((value) => is(value, type)) : undefined;
}

export function bodyOf(element, type) {
  const found = findExtension(element, type);
  return found ? found.get('value') || '' : '';
}

function ensureExtensions(element, bpmnFactory, commands) {
  const bo = getBusinessObject(element);
  let extensions = bo.get('extensionElements');
  if (!extensions) {
    extensions = bpmnFactory.create('bpmn:ExtensionElements', { values: [] });
    extensions.$parent = bo;
    commands.push(update(element, bo, { extensionElements: extensions }));
  }
  return extensions;
}

function ensureChild(element, extensions, type, bpmnFactory, commands, attrs) {
  let child = extensions.get('values').find((value) => is(value, type));
  if (!child) {
    child = bpmnFactory.create(type, attrs);
    child.$parent = extensions;
    commands.push(update(element, extensions, { values: [...extensions.get('values'), child] }));
  }
  return child;
}

function update(element, moddleElement, properties) {
  return { cmd: 'element.updateModdleProperties', context: { element, moddleElement, properties } };
}

export function setBody(element, type, value, { bpmnFactory, commandStack }) {
  const commands = [];
  const extensions = ensureExtensions(element, bpmnFactory, commands);
  const child = ensureChild(element, extensions, type, bpmnFactory, commands, { value });
  commands.push(update(element, child, { value }));
  commandStack.execute(MULTI, commands);
}

export function propertyOf(element, name) {
  const properties = findExtension(element, 'spiffworkflow:properties');
  const found = properties && properties.get('properties').find((p) => p.get('name') === name);
  return found ? found.get('value') || '' : '';
}

export function setProperty(element, name, value, { bpmnFactory, commandStack }) {
  const commands = [];
  const extensions = ensureExtensions(element, bpmnFactory, commands);
  const properties = ensureChild(element, extensions, 'spiffworkflow:properties', bpmnFactory, commands,
    { properties: [] });
  const others = properties.get('properties').filter((p) => p.get('name') !== name);
  if (value) {
    const property = bpmnFactory.create('spiffworkflow:property', { name, value });
    property.$parent = properties;
    others.push(property);
  }
  commands.push(update(element, properties, { properties: others }));
  commandStack.execute(MULTI, commands);
}
