import ElkModule from 'elkjs/lib/elk.bundled.js';
import type { AnyStateMachine } from 'xstate';
import { eventText } from '../inspect/trace.js';

/** A state of a machine as the console draws it: its id (`machine.path.to.state`) and its place. */
export interface ChartState {
  readonly id: string;
  readonly label: string;
  readonly kind: 'atomic' | 'compound' | 'final' | 'parallel' | 'history';
  readonly initial: boolean;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface ChartEdge {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly label: string;
  /** polyline through the layout, start to end */
  points: { x: number; y: number }[];
  labelAt: { x: number; y: number } | null;
}

export interface Chart {
  readonly machine: string;
  readonly states: ChartState[];
  readonly edges: ChartEdge[];
  /** transitions defined on the whole machine (taken from any state), drawn as a note */
  readonly fromAnyState: { event: string; to: string }[];
  width: number;
  height: number;
}

interface StateNodeLike {
  readonly id: string;
  readonly key: string;
  readonly type: ChartState['kind'];
  readonly states: Record<string, StateNodeLike>;
  readonly initial?: { target: readonly StateNodeLike[] };
  readonly transitions: Map<string, readonly { target?: readonly StateNodeLike[] }[]>;
  readonly always?: readonly { target?: readonly StateNodeLike[] }[];
}

/** elkjs is CommonJS: under NodeNext its default import is the class itself. */
const ELK = ElkModule as unknown as new () => { layout(graph: unknown): Promise<unknown> };

const CHAR_WIDTH = 7;
const STATE_HEIGHT = 26;
const LABEL_HEIGHT = 14;

/** States and transitions of a machine, without layout: pure, from the machine's definition. */
export function chartOf(machine: AnyStateMachine): Chart {
  const root = machine.root as unknown as StateNodeLike;
  const states: ChartState[] = [];
  const edges: ChartEdge[] = [];
  const fromAnyState: Chart['fromAnyState'] = [];
  // One edge per pair of states, naming every event that takes it: three arrows from one state to another say less than one.
  const labels = new Map<string, Set<string>>();
  const between = (from: string, to: string) => {
    const key = `${from}\n${to}`;
    let set = labels.get(key);
    if (set === undefined) {
      set = new Set();
      labels.set(key, set);
    }
    return set;
  };
  const visit = (sn: StateNodeLike, parent: StateNodeLike | null) => {
    if (parent !== null) {
      const initial = parent.initial?.target.some((t) => t.id === sn.id) ?? false;
      states.push({ id: sn.id, label: sn.key, kind: sn.type, initial, x: 0, y: 0, width: 0, height: 0 });
    }
    const add = (event: string, targets: readonly StateNodeLike[] | undefined) => {
      for (const t of targets ?? []) {
        if (parent === null) fromAnyState.push({ event: eventText(event), to: t.id });
        else between(sn.id, t.id).add(eventText(event));
      }
    };
    for (const [event, defs] of sn.transitions) for (const d of defs) add(event, d.target);
    for (const d of sn.always ?? []) add('always', d.target);
    for (const child of Object.values(sn.states)) visit(child, sn);
  };
  visit(root, null);
  for (const [key, events] of labels) {
    const [from, to] = key.split('\n') as [string, string];
    edges.push({ id: `e${edges.length}`, from, to, label: [...events].join(' / '), points: [], labelAt: null });
  }
  return { machine: root.id, states, edges, fromAnyState, width: 0, height: 0 };
}

interface ElkNode {
  id: string;
  width?: number;
  height?: number;
  x?: number;
  y?: number;
  children?: ElkNode[];
  labels?: { text: string; width: number; height: number }[];
  layoutOptions?: Record<string, string>;
  edges?: ElkEdge[];
}

interface ElkEdge {
  id: string;
  sources: string[];
  targets: string[];
  labels?: { text: string; width: number; height: number; x?: number; y?: number }[];
  sections?: { startPoint: { x: number; y: number }; endPoint: { x: number; y: number }; bendPoints?: { x: number; y: number }[] }[];
}

/** Lay a chart out with ELK (layered, top to bottom), in place; every coordinate is absolute. */
export async function layOut(chart: Chart): Promise<Chart> {
  const byId = new Map(chart.states.map((s) => [s.id, s]));
  const nodes = new Map<string, ElkNode>();
  const top: ElkNode[] = [];
  for (const s of chart.states) {
    const node: ElkNode = {
      id: s.id,
      labels: [{ text: s.label, width: s.label.length * CHAR_WIDTH, height: LABEL_HEIGHT }],
      layoutOptions: { 'elk.nodeLabels.placement': 'INSIDE H_CENTER V_TOP', 'elk.padding': '[top=24,left=10,bottom=10,right=10]' },
    };
    if (s.kind !== 'compound' && s.kind !== 'parallel') {
      node.width = Math.max(56, s.label.length * CHAR_WIDTH + 20);
      node.height = STATE_HEIGHT;
      node.layoutOptions = { 'elk.nodeLabels.placement': 'INSIDE H_CENTER V_CENTER' };
    }
    nodes.set(s.id, node);
    const parentId = s.id.slice(0, s.id.lastIndexOf('.'));
    const parent = nodes.get(parentId);
    if (parent) {
      parent.children ??= [];
      parent.children.push(node);
    } else top.push(node);
  }
  const graph: ElkNode = {
    id: chart.machine,
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'DOWN',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.layered.spacing.nodeNodeBetweenLayers': '36',
      'elk.spacing.nodeNode': '24',
      'elk.spacing.edgeLabel': '2',
      'elk.edgeLabels.placement': 'CENTER',
      'elk.json.shapeCoords': 'ROOT',
      'elk.json.edgeCoords': 'ROOT',
    },
    children: top,
    edges: chart.edges.map((e) => ({ id: e.id, sources: [e.from], targets: [e.to], labels: [{ text: e.label, width: e.label.length * 6 + 4, height: 12 }] })),
  };
  const out = (await new ELK().layout(graph)) as unknown as ElkNode;
  const place = (n: ElkNode) => {
    const s = byId.get(n.id);
    if (s) Object.assign(s, { x: n.x ?? 0, y: n.y ?? 0, width: n.width ?? 0, height: n.height ?? 0 });
    for (const c of n.children ?? []) place(c);
  };
  for (const c of out.children ?? []) place(c);
  const laidEdges = new Map((out.edges ?? []).map((e) => [e.id, e]));
  for (const e of chart.edges) {
    const s = laidEdges.get(e.id)?.sections?.[0];
    if (s) e.points = [s.startPoint, ...(s.bendPoints ?? []), s.endPoint];
    const label = laidEdges.get(e.id)?.labels?.[0];
    e.labelAt = label?.x !== undefined && label.y !== undefined ? { x: label.x, y: label.y + 10 } : null;
  }
  chart.width = out.width ?? 0;
  chart.height = out.height ?? 0;
  return chart;
}
