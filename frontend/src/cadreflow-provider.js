// The "CadreFlow" group of the properties panel: forms, DMN references and assignees (bpmn/CONVENTIONS.md).
import { TextAreaEntry, TextFieldEntry, isTextAreaEntryEdited, isTextFieldEntryEdited } from '@bpmn-io/properties-panel';
import { createElement as h } from '@bpmn-io/properties-panel/preact';
import { useEffect, useState } from '@bpmn-io/properties-panel/preact/hooks';
import { useService } from 'bpmn-js-properties-panel';
import { getBusinessObject, is } from 'bpmn-js/lib/util/ModelUtil';

import { bodyOf, propertyOf, setBody, setProperty } from './extensions';

const FORM = 'spiffworkflow:formSchema';
const DECISION = 'spiffworkflow:calledDecisionId';

function services() {
  return { bpmnFactory: useService('bpmnFactory'), commandStack: useService('commandStack'),
    translate: useService('translate') };
}

function validateJson(translate) {
  return (value) => {
    if (!value || !value.trim()) return translate('A form is required: a JSON Schema object');
    try {
      const schema = JSON.parse(value);
      return schema && typeof schema === 'object' && !Array.isArray(schema) ? null
        : translate('The form must be a JSON object');
    } catch (error) {
      return translate('Not valid JSON: {message}', { message: error.message });
    }
  };
}

function FormSchemaEntry({ element, id }) {
  const s = services();
  return h(TextAreaEntry, {
    element, id, rows: 10, monospace: true, autoResize: true, debounce: useService('debounceInput'),
    label: s.translate('Form (JSON Schema)'),
    description: s.translate('title, enum + x-enumNames, format: date, required, x-user-role'),
    getValue: () => bodyOf(element, FORM),
    setValue: (value) => setBody(element, FORM, value, s),
    validate: validateJson(s.translate),
  });
}

async function fetchPreview(url, schema) {
  const body = new FormData();
  body.append('schema', schema);
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const response = await fetch(url, { method: 'POST', body, headers: { 'X-CSRFToken': token },
    credentials: 'same-origin' });
  const result = await response.json();
  return result.ok ? { status: 'ok', html: result.html } : { status: 'invalid', errors: result.errors || [] };
}

// The form rendered by the server exactly as the task page renders it, a moment after each edit.
function usePreview(url, schema) {
  const [state, setState] = useState({ status: 'loading' });
  useEffect(() => {
    if (!schema.trim()) {
      setState({ status: 'empty' });
      return undefined;
    }
    let live = true;
    const timer = setTimeout(() => {
      fetchPreview(url, schema)
        .catch((error) => ({ status: 'invalid', errors: [{ message: error.message }] }))
        .then((found) => { if (live) setState(found); });
    }, 250);
    return () => { live = false; clearTimeout(timer); };
  }, [url, schema]);
  return state;
}

function previewBody(state, labels) {
  if (state.status === 'ok') {
    // Server-rendered by the same Jinja macros as the task page (escaped there), not built from user input here.
    return h('div', { class: 'cf-form-preview-body', dangerouslySetInnerHTML: { __html: state.html } });
  }
  if (state.status === 'invalid') {
    return h('div', { class: 'cf-form-preview-invalid' }, [
      h('p', null, labels.previewInvalid),
      h('ul', null, state.errors.map((error) => h('li', null, error.message))),
    ]);
  }
  return h('p', { class: 'cf-form-preview-note' }, state.status === 'empty' ? labels.previewEmpty : labels.previewLoading);
}

function FormPreviewEntry({ element, id }) {
  const config = useService('config.cadreflow');
  const state = usePreview(config.previewUrl, bodyOf(element, FORM));
  return h('div', { class: 'bio-properties-panel-entry cf-form-preview', 'data-entry-id': id,
    'data-state': state.status }, [
    h('div', { class: 'bio-properties-panel-label' }, config.labels.preview),
    previewBody(state, config.labels),
  ]);
}

function DecisionEntry({ element, id }) {
  const s = services();
  return h(TextFieldEntry, {
    element, id, debounce: useService('debounceInput'),
    label: s.translate('Decision table (DMN decision id)'),
    getValue: () => bodyOf(element, DECISION),
    setValue: (value) => setBody(element, DECISION, (value || '').trim(), s),
    validate: (value) => (value && value.trim() ? null : s.translate('A decision id is required')),
  });
}

function AssigneeEntry({ element, id }) {
  const s = services();
  return h(TextFieldEntry, {
    element, id, debounce: useService('debounceInput'),
    label: s.translate('Assignee (expression over case data)'),
    description: s.translate('e.g. team_lead; empty: anyone of the lane role'),
    getValue: () => propertyOf(element, 'assignee'),
    setValue: (value) => setProperty(element, 'assignee', (value || '').trim(), s),
  });
}

function isStartOfProcess(element) {
  return is(element, 'bpmn:StartEvent') && is(getBusinessObject(element).$parent, 'bpmn:Process');
}

export function cadreFlowEntries(element) {
  if (is(element, 'bpmn:UserTask')) {
    return [
      { id: 'cadreflow-form', element, component: FormSchemaEntry, isEdited: isTextAreaEntryEdited },
      { id: 'cadreflow-form-preview', element, component: FormPreviewEntry },
      { id: 'cadreflow-assignee', element, component: AssigneeEntry, isEdited: isTextFieldEntryEdited },
    ];
  }
  if (isStartOfProcess(element)) {
    return [
      { id: 'cadreflow-form', element, component: FormSchemaEntry, isEdited: isTextAreaEntryEdited },
      { id: 'cadreflow-form-preview', element, component: FormPreviewEntry },
    ];
  }
  if (is(element, 'bpmn:BusinessRuleTask')) {
    return [{ id: 'cadreflow-decision', element, component: DecisionEntry, isEdited: isTextFieldEntryEdited }];
  }
  return [];
}

function CadreFlowPropertiesProvider(propertiesPanel, translate) {
  this.getGroups = (element) => (groups) => {
    const entries = cadreFlowEntries(element);
    if (entries.length) {
      const at = Math.min(1, groups.length);
      groups.splice(at, 0, { id: 'cadreflow', label: translate('CadreFlow'), entries });
    }
    return groups;
  };
  propertiesPanel.registerProvider(500, this);
}

CadreFlowPropertiesProvider.$inject = ['propertiesPanel', 'translate'];

export default {
  __init__: ['cadreFlowPropertiesProvider'],
  cadreFlowPropertiesProvider: ['type', CadreFlowPropertiesProvider],
};
