// The inspectors' dashboard charts, drawn by Chart.js from the numbers the page embeds.
import {
  AMBER, BLUE, Chart, GREEN, RED, integerAxis, pageData, showEmpty,
} from './charts.js';

const { data, labels } = pageData('dashboard-data');

function bar(id, names, values, color, label, horizontal = false) {
  const canvas = document.getElementById(id);
  if (!names.length) {
    showEmpty(canvas, labels.empty);
    return;
  }
  const valueAxis = horizontal ? 'x' : 'y';
  new Chart(canvas, {
    type: 'bar',
    data: { labels: names, datasets: [{ label, data: values, backgroundColor: color, borderRadius: 4 }] },
    options: { indexAxis: horizontal ? 'y' : 'x', plugins: { legend: { display: false } },
      scales: { [valueAxis]: horizontal ? { beginAtZero: true } : integerAxis() } },
  });
}

bar('chart-open', data.open_by_process.map((r) => r.name), data.open_by_process.map((r) => r.count), BLUE,
  labels.cases);
bar('chart-overdue', data.overdue_by_role.map((r) => r.name), data.overdue_by_role.map((r) => r.count), RED,
  labels.tasks);
bar('chart-steps', data.step_days.map((s) => `${s.name}（${s.process_name}）`), data.step_days.map((s) => s.days),
  AMBER, labels.days, true);

new Chart(document.getElementById('chart-months'), {
  type: 'line',
  data: {
    labels: data.per_month.map((m) => m.month),
    datasets: [
      { label: labels.opened, data: data.per_month.map((m) => m.opened), borderColor: BLUE, backgroundColor: BLUE,
        tension: 0.25 },
      { label: labels.closed, data: data.per_month.map((m) => m.closed), borderColor: GREEN, backgroundColor: GREEN,
        tension: 0.25 },
    ],
  },
  options: { scales: { y: integerAxis() }, plugins: { legend: { position: 'bottom' } } },
});
document.body.dataset.charts = 'ready';
