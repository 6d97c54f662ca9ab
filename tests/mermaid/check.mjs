// Parse a Mermaid diagram (stdin) with the mermaid package's own parser, as GitHub's renderer
// would, and print what it understood as JSON: the diagram type, each node's id and label,
// each arrow, each subgraph's title. Labels come back decoded (Mermaid keeps `#60;` entities
// as placeholders until it draws), so a test can compare them with the text it meant.
//
// Exit codes: 0 accepted, 1 rejected by Mermaid (its message on stderr), 2 cannot run.
// Usage: node check.mjs < diagram.mmd     (after `npm ci` in this directory)

import { readFileSync } from 'node:fs';

let JSDOM;
try {
  ({ JSDOM } = await import('jsdom'));
} catch (err) {
  process.stderr.write(`cannot load jsdom (run npm ci in tests/mermaid): ${err}\n`);
  process.exit(2);
}
// mermaid sanitizes labels with DOMPurify, which needs a window: jsdom's, as in a browser
const { window } = new JSDOM('');
globalThis.window = window;
globalThis.document = window.document;

let mermaid;
try {
  ({ default: mermaid } = await import('mermaid'));
} catch (err) {
  process.stderr.write(`cannot load mermaid (run npm ci in tests/mermaid): ${err}\n`);
  process.exit(2);
}

// mermaid's encodeEntities writes `#60;` as `ﬂ°°60¶ß` and `#quot;` as `ﬂ°quot¶ß`
function decode(text) {
  return String(text ?? '')
    .replace(/ﬂ°°(\d+)¶ß/g, (_, code) => String.fromCodePoint(Number(code)))
    .replace(/ﬂ°(\w+)¶ß/g, (_, name) => `&${name};`);
}

const text = readFileSync(0, 'utf8');
let diagram;
try {
  await mermaid.parse(text);
  diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
} catch (err) {
  process.stderr.write(`${err?.message ?? err}\n`);
  process.exit(1);
}
const db = diagram.db;
const out = { type: diagram.type };
if (typeof db.getVertices === 'function') {
  out.nodes = [...db.getVertices().values()].map((v) => ({ id: v.id, label: decode(v.text) }));
  out.edges = db.getEdges().map((e) => [e.start, e.end]);
  out.subgraphs = db.getSubGraphs().map((s) => ({
    id: s.id, title: decode(s.title), nodes: [...s.nodes],
  }));
}
process.stdout.write(`${JSON.stringify(out)}\n`);
