// The message above the modeler after validate-and-deploy: the new version, or every problem found.
function format(template, values) {
  return template.replace(/{(\w+)}/g, (match, key) => (key in values ? values[key] : match));
}

function problemItem(problem, labels) {
  const item = document.createElement('li');
  const where = [problem.element_id, problem.line ? `${labels.line} ${problem.line}` : null].filter(Boolean);
  if (where.length) {
    const code = document.createElement('code');
    code.textContent = where.join(' · ');
    item.append(code, ' ');
  }
  item.append(problem.message);
  if (problem.element_id) item.dataset.elementId = problem.element_id;
  return item;
}

function success(box, result, labels, versionUrl) {
  const text = format(result.created ? labels.deployed : labels.unchanged, { version: result.version });
  const paragraph = document.createElement('p');
  paragraph.append(text, ' ');
  const link = document.createElement('a');
  link.href = `${versionUrl}${result.version}`;
  link.textContent = labels.view;
  paragraph.append(link);
  box.append(paragraph);
  if ((result.warnings || []).length) {
    const list = document.createElement('ul');
    result.warnings.forEach((w) => list.append(problemItem(w, labels)));
    box.append(labels.warnings, list);
  }
}

function failure(box, result, labels) {
  const paragraph = document.createElement('p');
  paragraph.textContent = (result.errors || []).length ? labels.rejected : `${labels.failed}: ${result.message}`;
  box.append(paragraph);
  const list = document.createElement('ul');
  list.className = 'problems';
  (result.errors || []).forEach((problem) => list.append(problemItem(problem, labels)));
  box.append(list);
}

export function showResult({ state, text, result, labels, versionUrl }) {
  const box = document.getElementById('deploy-result');
  box.hidden = false;
  box.className = `deploy-result deploy-${state}`;
  box.replaceChildren();
  if (state === 'busy') box.textContent = text;
  else if (state === 'ok') success(box, result, labels, versionUrl);
  else failure(box, result, labels);
}
