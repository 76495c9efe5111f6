// The one script of every page: open and close the navigation on narrow screens; print buttons.
document.addEventListener('DOMContentLoaded', () => {
  document.querySelectorAll('[data-print]').forEach((button) => button.addEventListener('click', () => window.print()));
  const toggle = document.querySelector('.nav-toggle');
  const nav = document.getElementById('site-nav');
  if (!toggle || !nav) return;
  toggle.addEventListener('click', () => {
    const open = toggle.getAttribute('aria-expanded') !== 'true';
    toggle.setAttribute('aria-expanded', String(open));
    nav.classList.toggle('open', open);
  });
});

// A page answering a POST (a form shown again with its errors) becomes a plain GET entry of the history,
// so Back and reload never ask to "confirm form resubmission".
if (document.body && document.body.dataset.posted && window.history.replaceState) {
  window.history.replaceState(null, '', window.location.href);
}

// Forms that undo something ask first (data-confirm holds the question).
document.addEventListener('submit', (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

// Cadre pickers: as the user types a name, unit or id, offer the matching cadres the user may read
// (their ids are the values sent) and name the one picked.
document.querySelectorAll('[data-picker]').forEach((picker) => {
  const input = picker.querySelector('input');
  const list = picker.querySelector('datalist');
  const chosen = picker.querySelector('.picker-chosen');
  const names = new Map([...list.options].map((o) => [o.value, o.textContent]));
  let timer = null;
  let asked = '';
  const show = () => { chosen.textContent = names.get(input.value) || ''; };
  const ask = async () => {
    const query = input.value.trim();
    if (query === asked) return;
    asked = query;
    const response = await fetch(`${picker.dataset.picker}?q=${encodeURIComponent(query)}`,
      { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
    if (!response.ok || query !== input.value.trim()) return;
    const cadres = await response.json();
    list.replaceChildren(...cadres.map((c) => {
      const option = document.createElement('option');
      option.value = c.id;
      option.textContent = `${c.name} · ${c.unit}`;
      names.set(c.id, option.textContent);
      return option;
    }));
    show();
  };
  input.addEventListener('input', () => { show(); clearTimeout(timer); timer = setTimeout(ask, 200); });
  input.addEventListener('focus', () => { if (!list.options.length || asked !== input.value.trim()) ask(); });
  // Typed before this script ran (a slow page): offer the matches now rather than wait for a keystroke.
  if (input.value.trim() && !names.has(input.value)) ask();
});
