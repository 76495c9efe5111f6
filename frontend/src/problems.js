// Problems found by validate or deploy, marked on their elements: red for errors, amber for warnings.
const MARKERS = { error: 'cf-error', warning: 'cf-warning' };

export function createProblemMarks(modeler) {
  const canvas = modeler.get('canvas');
  const overlays = modeler.get('overlays');
  const registry = modeler.get('elementRegistry');
  let marked = [];

  function clear() {
    marked.forEach(([id, marker]) => canvas.removeMarker(id, marker));
    overlays.remove({ type: 'cf-problem' });
    marked = [];
  }

  function note(problems, severity) {
    const list = document.createElement('ul');
    list.className = `cf-problem-overlay cf-problem-${severity}`;
    problems.forEach((p) => list.append(Object.assign(document.createElement('li'), { textContent: p.message })));
    return list;
  }

  // Errors first: an element with both is marked as an error and its note lists both.
  function mark(problems) {
    clear();
    const byElement = new Map();
    problems.filter((p) => p.element_id && registry.get(p.element_id)).forEach((p) => {
      byElement.set(p.element_id, [...(byElement.get(p.element_id) || []), p]);
    });
    byElement.forEach((found, id) => {
      const severity = found.some((p) => p.severity !== 'warning') ? 'error' : 'warning';
      canvas.addMarker(id, MARKERS[severity]);
      marked.push([id, MARKERS[severity]]);
      overlays.add(id, 'cf-problem', { position: { bottom: -6, left: 0 }, html: note(found, severity) });
    });
  }

  // Select an element and centre it, at 100% at least so its note can be read (a click on a listed problem).
  function show(id) {
    const element = registry.get(id);
    if (!element) return;
    const point = element.waypoints ? element.waypoints[0] : element;
    const x = point.x + (element.width || 0) / 2;
    const y = point.y + (element.height || 0) / 2;
    const size = canvas.getSize();
    const scale = Math.max(canvas.zoom(), 1);
    canvas.viewbox({ x: x - size.width / 2 / scale, y: y - size.height / 2 / scale,
      width: size.width / scale, height: size.height / scale });
    modeler.get('selection').select(element);
  }

  return { clear, mark, show };
}
