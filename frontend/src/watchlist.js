// The watch list's history: per scan day, how many cadres were at 预警 and at 关注 (stacked bars, one colour
// per level), for the unit the page's form chose or all units; the numbers come embedded in the page.
import {
  AMBER, Chart, RED, integerAxis, pageData, showEmpty,
} from './charts.js';

const { days, labels } = pageData('history-data');
const section = document.getElementById('history');
const canvas = document.getElementById('chart-history');

function ready() {
  section.dataset.state = 'ready';
}

if (!days.some((d) => d.alert || d.watch)) {
  showEmpty(canvas, labels.empty);
  ready();
} else {
  const level = (name, color) => ({
    label: labels[name], data: days.map((d) => d[name]), backgroundColor: color, borderRadius: 3, stack: 'levels',
  });
  new Chart(canvas, {
    type: 'bar',
    data: { labels: days.map((d) => d.scanned_on), datasets: [level('alert', RED), level('watch', AMBER)] },
    options: {
      scales: {
        x: { stacked: true },
        y: { ...integerAxis(), stacked: true, title: { display: true, text: labels.cadres } },
      },
      plugins: { legend: { position: 'bottom' } },
    },
    plugins: [{ id: 'cf-ready', afterRender: ready }],
  });
}
