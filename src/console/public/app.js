// The dynamo console page: one WebSocket to the console server, which bridges the
// cluster's NATS subjects (status, ring, traces). Everything is drawn from what it sends.

const SVG = 'http://www.w3.org/2000/svg';
const PALETTE = ['#4fb0ff', '#f28e2b', '#59c96b', '#e15759', '#b07aa1', '#edc948', '#76b7b2', '#ff9da7', '#9c755f', '#bab0ac'];
const RING_SPACE = 2 ** 48;
const MAX_FEED = 50;
const MAX_TRANSITIONS_SHOWN = 12;
const LONG_LIVED = ['node', 'gossiper', 'anti-entropy', 'hinted-handoff', 'reaper'];
const PHASE_COLOURS = ['#4fb0ff', '#59c96b', '#edc948', '#b07aa1', '#76b7b2', '#f28e2b'];

const state = { status: null, ring: null, charts: null, runs: [], transitions: [], rates: [], selectedNode: null, selectedRun: null };
const colours = new Map();

const $ = (id) => document.getElementById(id);
function el(tag, attrs = {}, text) {
  const e = tag.startsWith('svg:') ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}
const pct = (x) => `${(x * 100).toFixed(1)}%`;
const ms = (x) => (x === null || x === undefined ? '–' : x < 10 ? `${x.toFixed(2)} ms` : `${Math.round(x)} ms`);

function colourOf(node) {
  if (!colours.has(node)) colours.set(node, PALETTE[colours.size % PALETTE.length]);
  return colours.get(node);
}

// ---------- ring ----------

function arcPath(a0, a1, r0, r1) {
  const p = (a, r) => `${(r * Math.sin(a)).toFixed(2)} ${(-r * Math.cos(a)).toFixed(2)}`;
  const large = a1 - a0 > Math.PI ? 1 : 0;
  return `M ${p(a0, r1)} A ${r1} ${r1} 0 ${large} 1 ${p(a1, r1)} L ${p(a1, r0)} A ${r0} ${r0} 0 ${large} 0 ${p(a0, r0)} Z`;
}

function ownershipOf(node) {
  return state.status?.members.find((m) => m.id === node)?.ownership ?? null;
}

function drawRing() {
  const svg = $('ring');
  svg.replaceChildren();
  const tokens = state.ring?.tokens ?? [];
  if (tokens.length === 0) return;
  // A token owns the range from the previous token (exclusive) up to itself.
  const g = el('svg:g');
  for (let i = 0; i < tokens.length; i++) {
    const [pos, node] = tokens[i];
    const prev = i === 0 ? tokens[tokens.length - 1][0] - RING_SPACE : tokens[i - 1][0];
    const a0 = (prev / RING_SPACE) * 2 * Math.PI;
    const a1 = (pos / RING_SPACE) * 2 * Math.PI;
    const path = el('svg:path', { d: arcPath(a0, a1, 110, 140), fill: colourOf(node), 'data-node': node });
    path.append(el('svg:title', {}, `${node}: range ending at token ${pos}`));
    g.append(path);
  }
  g.addEventListener('mouseover', (e) => {
    const node = e.target.getAttribute?.('data-node');
    if (!node) return;
    const count = tokens.filter((t) => t[1] === node).length;
    const own = ownershipOf(node);
    $('ring-hover').textContent = `${node}: ${count} tokens, owns ${own === null ? '?' : pct(own)} of the ring as first replica`;
    for (const p of g.children) p.style.opacity = p.getAttribute('data-node') === node ? '1' : '0.25';
  });
  g.addEventListener('mouseleave', () => {
    for (const p of g.children) p.style.opacity = '1';
    $('ring-hover').textContent = "hover a node's ranges to see its share";
  });
  svg.append(g);
  const n = state.ring.n;
  svg.append(el('svg:text', { x: 0, y: -6, 'text-anchor': 'middle', fill: '#d8dee6', 'font-size': 15 }, `${state.ring.members.length} nodes`));
  svg.append(el('svg:text', { x: 0, y: 14, 'text-anchor': 'middle', fill: '#7d8a98', 'font-size': 11 }, `${tokens.length} tokens, N=${n}`));
  drawLegend();
}

function drawLegend() {
  const legend = $('ring-legend');
  legend.replaceChildren();
  for (const m of state.ring?.members ?? []) {
    const own = ownershipOf(m.id);
    const item = el('span', { 'data-node': m.id });
    item.append(el('i', { style: `background:${colourOf(m.id)}` }), document.createTextNode(`${m.id} ${own === null ? '' : pct(own)}`));
    legend.append(item);
  }
}

// ---------- members ----------

// As `dynamo status` says it: in sync once every range's last compare found equal trees.
function syncWord(ae) {
  if (ae.ranges.some((r) => r.inSync === false)) return ae.state === 'repairing' ? 'repairing' : 'out of sync';
  if (ae.ranges.length > 0 && ae.ranges.every((r) => r.inSync === true)) return 'in sync';
  return 'not compared yet';
}

function drawMembers() {
  const s = state.status;
  if (!s) return;
  const up = s.members.filter((m) => m.state === 'up').length;
  $('summary').textContent = `${up}/${s.members.length} nodes up · N=${s.n} R=${s.r} W=${s.w} · status from ${s.node}`;
  $('version').textContent = s.version;
  const body = $('members').tBodies[0];
  body.replaceChildren();
  for (const m of s.members) {
    const tr = el('tr', { 'data-node': m.id, 'data-state': m.state });
    const name = el('td');
    name.append(el('span', { class: 'swatch', style: `background:${colourOf(m.id)}` }), document.createTextNode(m.id));
    const requests = m.requests ? m.requests.queue + m.requests.direct : null;
    const ae = m.antiEntropy;
    const aeText = !ae?.enabled ? '–' : `${syncWord(ae)}, ${ae.keysRepaired} repaired`;
    const cells = [
      m.state,
      `${m.heartbeatAgeMs} ms`,
      m.weight,
      m.tokens,
      pct(m.ownership),
      m.keys ?? '–',
      m.hints ?? '–',
      m.inFlight ?? '–',
      requests ?? '–',
      aeText,
    ];
    tr.append(name);
    cells.forEach((c, i) => {
      tr.append(el('td', i === 0 ? { class: `state state-${m.state}` } : {}, String(c)));
    });
    body.append(tr);
  }
  $('members-note').textContent = `as ${s.node} sees them`;
  if (state.selectedNode === null || !s.members.some((m) => m.id === state.selectedNode)) state.selectedNode = s.members[0]?.id ?? null;
  drawTabs();
  redrawActors();
}

// Transitions arrive several a second: draw the actors' charts at most once a frame.
let actorsPending = false;
function redrawActors() {
  if (actorsPending) return;
  actorsPending = true;
  requestAnimationFrame(() => {
    actorsPending = false;
    drawActors();
  });
}

// ---------- state charts ----------

function activeIds(chart, stateText) {
  const ids = new Set();
  if (!stateText) return ids;
  for (const leaf of stateText.split(', ')) {
    const parts = leaf.split('.');
    for (let i = 1; i <= parts.length; i++) ids.add(`${chart.machine}.${parts.slice(0, i).join('.')}`);
  }
  return ids;
}

function drawChart(chart, lit, litClass) {
  const pad = 6;
  const svg = el('svg:svg', {
    viewBox: `${-pad} ${-pad} ${chart.width + 2 * pad} ${chart.height + 2 * pad + (chart.fromAnyState.length ? 14 : 0)}`,
    'data-machine': chart.machine,
  });
  const defs = el('svg:defs');
  const marker = el('svg:marker', {
    id: `arrow-${chart.machine}`,
    viewBox: '0 0 10 10',
    refX: 9,
    refY: 5,
    markerWidth: 6,
    markerHeight: 6,
    orient: 'auto-start-reverse',
  });
  marker.append(el('svg:path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#5d6b79' }));
  defs.append(marker);
  svg.append(defs);
  // Containers first, so atomic states and edges draw over them.
  const ordered = [...chart.states].sort((a, b) => (b.kind === 'compound') - (a.kind === 'compound'));
  for (const s of ordered) {
    const g = el('svg:g', { class: `st ${s.kind}${lit.has(s.id) ? ` ${litClass}` : ''}`, 'data-state': s.id });
    g.append(el('svg:rect', { x: s.x, y: s.y, width: s.width, height: s.height, rx: 5 }));
    const compound = s.kind === 'compound' || s.kind === 'parallel';
    g.append(el('svg:text', { x: s.x + s.width / 2, y: compound ? s.y + 14 : s.y + s.height / 2 + 4, 'text-anchor': 'middle' }, s.label));
    if (s.initial) g.append(el('svg:circle', { cx: s.x - 4, cy: s.y + 4, r: 3, fill: '#7d8a98' }));
    svg.append(g);
  }
  for (const e of chart.edges) {
    if (e.points.length < 2) continue;
    const g = el('svg:g', { class: 'ed' });
    g.append(el('svg:path', { d: `M ${e.points.map((p) => `${p.x} ${p.y}`).join(' L ')}`, 'marker-end': `url(#arrow-${chart.machine})` }));
    if (e.labelAt) g.append(el('svg:text', { x: e.labelAt.x, y: e.labelAt.y }, e.label));
    svg.append(g);
  }
  if (chart.fromAnyState.length) {
    const note = chart.fromAnyState.map((t) => `${t.event} → ${t.to.slice(chart.machine.length + 1)}`).join(', ');
    svg.append(el('svg:text', { class: 'note', x: 0, y: chart.height + 10 }, `from any state: ${note}`));
  }
  return svg;
}

function drawTabs() {
  const tabs = $('node-tabs');
  const ids = state.status?.members.map((m) => m.id) ?? [];
  if (tabs.dataset.ids === ids.join(',') && tabs.dataset.selected === state.selectedNode) return;
  tabs.dataset.ids = ids.join(',');
  tabs.dataset.selected = state.selectedNode ?? '';
  tabs.replaceChildren();
  for (const id of ids) {
    const b = el('button', { class: id === state.selectedNode ? 'active' : '', 'data-node': id }, id);
    b.onclick = () => {
      state.selectedNode = id;
      drawTabs();
      drawActors();
    };
    tabs.append(b);
  }
}

function drawActors() {
  const box = $('actor-charts');
  if (!state.charts || state.selectedNode === null) return;
  const member = state.status?.members.find((m) => m.id === state.selectedNode);
  const states = member?.actors ?? {};
  box.replaceChildren();
  for (const actor of LONG_LIVED) {
    const chart = state.charts[actor];
    const now = states[actor] ?? null;
    const card = el('div', { class: 'actor', 'data-actor': actor });
    const h = el('h3', {}, `${actor} `);
    h.append(el('span', { class: 'now' }, now ?? (member?.actors ? 'in another process' : 'no answer from this node')));
    card.append(h, drawChart(chart, activeIds(chart, now), 'active'));
    const list = el('ol');
    const recent = state.transitions
      .filter((t) => t.node === state.selectedNode && t.actor === actor)
      .slice(-MAX_TRANSITIONS_SHOWN)
      .reverse();
    for (const t of recent) list.append(el('li', {}, `${new Date(t.at).toLocaleTimeString()} ${t.from ?? '·'} → ${t.to} (${t.event})`));
    if (recent.length === 0)
      list.append(el('li', {}, member?.trace?.enabled ? 'no transitions seen yet' : 'transitions appear when the node runs with --inspect'));
    card.append(list);
    box.append(card);
  }
}

// ---------- coordinator feed ----------

function runItem(run) {
  const li = el('li', { 'data-request': run.requestId, 'data-key': run.key });
  const head = el('div', { class: 'head' });
  head.append(
    el('span', {}, new Date(run.at).toLocaleTimeString()),
    el('span', { style: `color:${colourOf(run.node)}` }, run.node),
    el('span', {}, `${run.op} ${run.bucket}/${run.key}`),
    el('span', { class: run.outcome === 'ok' ? 'ok' : 'bad' }, run.outcome),
    el('span', { title: 'until the client had its answer' }, `replied ${ms(run.replyMs)}`),
    el('span', { class: 'muted', title: 'until the run ended (a read repairs after replying)' }, `ended ${ms(run.totalMs)}`),
  );
  const bar = el('div', { class: 'timeline' });
  const total = Math.max(run.totalMs, 0.01);
  const phases = run.steps.filter((s) => s.kind === 'phase');
  phases.forEach((p, i) => {
    const end = i + 1 < phases.length ? phases[i + 1].atMs : total;
    const seg = el(
      'div',
      {
        class: 'phase',
        title: `${p.name}: ${ms(p.atMs)} → ${ms(end)}`,
        style: `left:${(p.atMs / total) * 100}%;width:${Math.max(0.5, ((end - p.atMs) / total) * 100)}%;background:${PHASE_COLOURS[i % PHASE_COLOURS.length]}`,
      },
      p.name,
    );
    bar.append(seg);
  });
  for (const s of run.steps.filter((x) => x.kind !== 'phase')) {
    bar.append(
      el('div', {
        class: 'tick',
        title: `${s.name} ${s.kind} at ${ms(s.atMs)}`,
        style: `left:${Math.min(99.5, (s.atMs / total) * 100)}%;background:${s.kind === 'fail' ? '#e5534b' : colourOf(s.name)}`,
      }),
    );
  }
  const answers = run.steps.filter((s) => s.kind !== 'phase').map((s) => `${s.name} ${s.kind} ${ms(s.atMs)}`);
  li.append(
    head,
    bar,
    el(
      'div',
      { class: 'steps' },
      `replicas ${run.replicas.join(', ')} · ${answers.join(' · ') || 'no replica answers'}${run.truncated ? ` · ${run.truncated} steps not recorded` : ''}`,
    ),
  );
  li.onclick = () => {
    state.selectedRun = run;
    for (const x of $('feed').children) x.classList.toggle('selected', x === li);
    drawRunChart();
  };
  return li;
}

function drawFeed() {
  const feed = $('feed');
  feed.replaceChildren(...state.runs.slice().reverse().map(runItem));
  const tracing = state.status?.members.some((m) => m.trace?.enabled);
  $('feed-note').textContent = tracing
    ? 'sampled on each node, newest first; click one to see its path'
    : '(start the nodes with --inspect to see sampled runs)';
}

function addRun(run) {
  state.runs.push(run);
  if (state.runs.length > MAX_FEED) state.runs.shift();
  const feed = $('feed');
  feed.prepend(runItem(run));
  while (feed.children.length > MAX_FEED) feed.lastChild.remove();
  if (state.selectedRun === null) drawRunChart(run);
}

function drawRunChart(run = state.selectedRun) {
  const box = $('run-chart');
  if (!state.charts || !run) return;
  // A get and a put (or delete) run different machines, as in Riak.
  const chart = state.charts[run.op === 'get' ? 'get-coordinator' : 'put-coordinator'];
  const visited = new Set();
  for (const s of run.steps) if (s.kind === 'phase') for (const id of activeIds(chart, s.name)) visited.add(id);
  box.replaceChildren(el('div', { class: 'muted' }, `path of ${run.requestId} (${run.op}), ${ms(run.totalMs)}`), drawChart(chart, visited, 'visited'));
}

// ---------- charts ----------

let opsPlot = null;
let latencyPlot = null;

function plotSize() {
  return { width: Math.max(280, $('ops-chart').clientWidth), height: 160 };
}

function drawPlots() {
  const t = state.rates.map((p) => p.t / 1000);
  const ops = ['get', 'put', 'delete'].map((op) => state.rates.map((p) => p.ops[op]?.perSecond ?? null));
  const lat = ['get', 'put'].map((op) => state.rates.map((p) => p.ops[op]?.p999Ms ?? null));
  const axes = [
    { stroke: '#7d8a98', grid: { stroke: '#2a333d' } },
    { stroke: '#7d8a98', grid: { stroke: '#2a333d' } },
  ];
  if (!opsPlot) {
    opsPlot = new uPlot(
      { ...plotSize(), axes, series: [{}, { label: 'get', stroke: '#4fb0ff' }, { label: 'put', stroke: '#f28e2b' }, { label: 'delete', stroke: '#e15759' }] },
      [t, ...ops],
      $('ops-chart'),
    );
    latencyPlot = new uPlot(
      {
        ...plotSize(),
        axes,
        series: [{}, { label: 'get p99.9', stroke: '#4fb0ff', spanGaps: true }, { label: 'put p99.9', stroke: '#f28e2b', spanGaps: true }],
      },
      [t, ...lat],
      $('latency-chart'),
    );
  } else {
    opsPlot.setData([t, ...ops]);
    latencyPlot.setData([t, ...lat]);
  }
}

// ---------- wiring ----------

function onMessage(m) {
  switch (m.type) {
    case 'hello':
      Object.assign(state, { status: m.state.status, ring: m.state.ring, runs: m.state.runs, transitions: m.state.transitions, rates: m.state.rates });
      drawMembers();
      drawRing();
      drawFeed();
      drawPlots();
      if (state.runs.length) drawRunChart(state.runs[state.runs.length - 1]);
      break;
    case 'status':
      state.status = m.status;
      $('status-error').hidden = true;
      drawMembers();
      drawLegend();
      break;
    case 'statusError':
      $('status-error').hidden = false;
      $('status-error').textContent = m.error;
      break;
    case 'ring':
      state.ring = m.ring;
      drawRing();
      break;
    case 'rate':
      state.rates.push(m.point);
      if (state.rates.length > 300) state.rates.shift();
      drawPlots();
      break;
    case 'trace':
      if (m.trace.type === 'run') addRun(m.trace);
      else {
        state.transitions.push(m.trace);
        if (state.transitions.length > 300) state.transitions.shift();
        if (m.trace.node === state.selectedNode) redrawActors();
      }
      break;
  }
}

function connect() {
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  ws.onopen = () => {
    $('connection').textContent = 'live';
    $('connection').classList.add('live');
  };
  ws.onmessage = (e) => onMessage(JSON.parse(e.data));
  ws.onclose = () => {
    $('connection').textContent = 'offline, reconnecting';
    $('connection').classList.remove('live');
    setTimeout(connect, 2000);
  };
}

async function main() {
  state.charts = await (await fetch('/api/charts')).json();
  connect();
  window.addEventListener('resize', () => {
    opsPlot?.setSize(plotSize());
    latencyPlot?.setSize(plotSize());
  });
}

main();
