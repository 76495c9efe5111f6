// What every chart page shares: Chart.js with the parts they draw, the UI's font and colours, integer axes.
import {
  BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController, LineElement,
  PointElement, Tooltip,
} from 'chart.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement,
  Legend, Tooltip);
Chart.defaults.font.family = '"WenQuanYi Micro Hei", "Microsoft YaHei", "PingFang SC", system-ui, sans-serif';
Chart.defaults.maintainAspectRatio = false;
if (window.matchMedia('(prefers-reduced-motion: reduce)').matches) Chart.defaults.animation = false;

export { Chart };
export const BLUE = '#1d4ed8';
export const RED = '#b91c1c';
export const GREEN = '#15803d';
export const AMBER = '#b45309';

export function integerAxis() {
  return { beginAtZero: true, ticks: { precision: 0 } };
}

// The numbers a page embeds for its charts (a <script type="application/json">).
export function pageData(id) {
  return JSON.parse(document.getElementById(id).textContent);
}

// Instead of an empty chart, say there is nothing to draw.
export function showEmpty(canvas, text) {
  canvas.replaceWith(Object.assign(document.createElement('p'), { className: 'muted', textContent: text }));
}
