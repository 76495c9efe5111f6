// The message above the modeler after validate or deploy: what it would change or did, or every problem.
function format(template, values) {
  return template.replace(/{(\w+)}/g, (match, key) => (key in values ? values[key] : match));
}

function link(href, text) {
  return Object.assign(document.createElement('a'), { href, textContent: text });
}

// One problem: the element's name (a button that shows it on the diagram) and id, then the message.
function problemItem(problem, onShow) {
  const item = document.createElement('li');
  item.className = `problem problem-${problem.severity || 'error'}`;
  if (problem.element_id) {
    item.dataset.elementId = problem.element_id;
    const name = Object.assign(document.createElement('button'), {
      type: 'button', className: 'link-button problem-element', textContent: problem.element_name || problem.element_id,
    });
    name.addEventListener('click', () => onShow(problem.element_id));
    const id = Object.assign(document.createElement('code'), { textContent: problem.element_id });
    item.append(name, ' ', id, ' — ');
  }
  item.append(problem.message);
  return item;
}

function problemList(problems, className, onShow) {
  const list = document.createElement('ul');
  list.className = className;
  problems.forEach((problem) => list.append(problemItem(problem, onShow)));
  return list;
}

function headline(kind, result, labels) {
  const values = { version: result.version, newest: result.newest };
  const older = result.change === 'none' && result.newest && result.version !== result.newest;
  if (kind === 'validate') {
    const key = { none: older ? 'validNoneOlder' : 'validNone', layout: 'validLayout', process: 'validProcess' };
    return format(labels[key[result.change] || 'valid'], values);
  }
  if (!result.created) return format(older ? labels.unchangedOlder : labels.unchanged, values);
  return format(result.change === 'layout' ? labels.deployedLayout : labels.deployed, values);
}

function followUps(result, labels, urls) {
  const links = [link(`${urls.versionUrl}${result.version}`, labels.view)];
  if (result.created && result.version > 1) {
    links.push(link(`${urls.diffUrl}?from=${result.version - 1}&to=${result.version}`, labels.diff));
  }
  if (result.created && result.change === 'process') links.push(link(urls.migrateUrl, labels.migrate));
  return links;
}

function success(box, kind, result, labels, urls, onShow) {
  const paragraph = document.createElement('p');
  paragraph.className = 'result-headline';
  paragraph.append(headline(kind, result, labels));
  if (kind === 'deploy') followUps(result, labels, urls).forEach((a) => paragraph.append(' ', a));
  box.append(paragraph);
  if ((result.warnings || []).length) box.append(labels.warnings, problemList(result.warnings, 'warnings', onShow));
}

function failure(box, result, labels, onShow) {
  const paragraph = document.createElement('p');
  paragraph.className = 'result-headline';
  const errors = result.errors || [];
  paragraph.textContent = errors.length ? labels.rejected : `${labels.failed}${result.message}`;
  box.append(paragraph, problemList(errors, 'problems', onShow));
}

export function showResult({ state, kind, text, result, labels, urls, onShow }) {
  const box = document.getElementById('deploy-result');
  box.hidden = false;
  box.className = `deploy-result deploy-${state}`;
  box.dataset.kind = kind || '';
  box.replaceChildren();
  if (state === 'busy') box.textContent = text;
  else if (state === 'ok') success(box, kind, result, labels, urls, onShow || (() => {}));
  else failure(box, result, labels, onShow || (() => {}));
}
