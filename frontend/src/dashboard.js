// The inspectors' dashboard charts, drawn by Chart.js from the numbers the page embeds.
import {
  BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController, LineElement,
  PointElement, Tooltip,
} from 'chart.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement,
  Legend, Tooltip);
Chart.defaults.font.family = '"WenQuanYi Micro Hei", "Microsoft YaHei", "PingFang SC", system-ui, sans-serif';
Chart.defaults.maintainAspectRatio = false;
if (window.matchMedia('(prefers-reduced-motion: reduce)').matches) Chart.defaults.animation = false;

const BLUE = '#1d4ed8';
const RED = '#b91c1c';
const GREEN = '#15803d';
const AMBER = '#b45309';

const { data, labels } = JSON.parse(document.getElementById('dashboard-data').textContent);

function integerAxis() {
  return { beginAtZero: true, ticks: { precision: 0 } };
}

function bar(id, names, values, color, label, horizontal = false) {
  const canvas = document.getElementById(id);
  if (!names.length) {
    canvas.replaceWith(Object.assign(document.createElement('p'), { className: 'muted', textContent: labels.empty }));
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
