import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RealCluster } from '../helpers/real-cluster.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The README's client example, run as written against a real cluster. */
describe('README client example (real servers)', function () {
  this.timeout(60_000);
  let c: RealCluster;
  before(async () => {
    c = await new RealCluster(['n1', 'n2', 'n3']).start();
  });
  after(() => c?.stop());

  it('runs and prints what the README says it prints', async () => {
    const readme = readFileSync(`${ROOT}/README.md`, 'utf8');
    const section = readme.slice(readme.indexOf('## Client library'));
    const code = /```js\n([\s\S]*?)```/.exec(section)![1]!;
    // Inside the package folder, so `import ... from 'dynamo-kv'` resolves to this package (self-reference).
    const file = `${ROOT}/dist/readme-example.mjs`;
    writeFileSync(file, code);
    // Not spawnSync: the nodes answering the example live in this process's event loop.
    const child = spawn(process.execPath, [file], { env: { ...process.env, DYNAMO_NATS_URL: c.nats.url } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exitCode = await new Promise((resolve) => child.on('close', resolve));
    expect(exitCode, stderr).to.equal(0);
    expect(stdout).to.equal("true [ [ 'book' ] ]\n[ 'book', 'pen' ]\n[ 'cart:bob' ]\nBAD_REQUEST r\n");
  });
});
