import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

/** Events a browser that opens the page late still gets. */
const REPLAY = 200;
/** Largest inspection event a node may send. */
const MAX_EVENT_BYTES = 1024 * 1024;

/** The page: the Stately inspector in a frame, fed with the events this relay receives. */
function page(inspectorUrl: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>dynamo: Stately inspector</title>
<style>html,body,iframe{margin:0;border:0;width:100%;height:100%}</style></head>
<body><iframe id="ui" src="${inspectorUrl}"></iframe>
<script>
  const ui = document.getElementById('ui');
  const early = [];
  let ready = false;
  addEventListener('message', (e) => {
    if (e.data && e.data.type === '@statelyai.connected' && !ready) {
      ready = true;
      for (const ev of early.splice(0)) ui.contentWindow.postMessage(ev, '*');
    }
  });
  const ws = new WebSocket('ws://' + location.host);
  ws.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    if (ready) ui.contentWindow.postMessage(ev, '*');
    else early.push(ev);
  };
</script></body></html>`;
}

export interface InspectorRelay {
  readonly port: number;
  /** the page a browser opens */
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * What `dynamo up --inspect` starts for the Stately inspector: a WebSocket relay that
 * nodes send their actors' inspection events to, passing each to every other client
 * (the browser page), and the page itself. It listens on `host`, 127.0.0.1 unless
 * told otherwise: the events show keys and values.
 */
export async function startInspectorRelay(port: number, host = '127.0.0.1', inspectorUrl = 'https://stately.ai/inspect'): Promise<InspectorRelay> {
  const http = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page(inspectorUrl));
  });
  const wss = new WebSocketServer({ server: http, maxPayload: MAX_EVENT_BYTES });
  const recent: string[] = [];
  wss.on('connection', (ws) => {
    for (const m of recent) ws.send(m);
    ws.on('message', (data) => {
      const text = data.toString();
      recent.push(text);
      if (recent.length > REPLAY) recent.shift();
      for (const other of wss.clients) if (other !== ws && other.readyState === WebSocket.OPEN) other.send(text);
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => resolve());
  });
  const bound = (http.address() as AddressInfo).port;
  return {
    port: bound,
    url: `http://${host === '127.0.0.1' || host === '::1' ? 'localhost' : host}:${bound}`,
    stop: async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
