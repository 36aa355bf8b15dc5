// The launch contract of a multi-node member: every container is told the rendezvous (MASTER_ADDR and _PORT, the
// node count and its rank, processes per node, the world size, every member's address head first), and the
// recipe's launcher renders the same static rendezvous as NVIDIA's multi-node scripts do.
import { loadManifests } from './load.js';
import { validateParams } from './params.js';
import { renderLaunch, type RenderContext } from './render.js';
import type { Manifest } from './schema.js';
import { contextFor, recipesDir } from './testing/fixtures.js';

const manifests = loadManifests(recipesDir);

function render(m: Manifest, ctx: RenderContext) {
  const checked = validateParams(m, {});
  if (!checked.ok) throw new Error(JSON.stringify(checked.issues));
  return renderLaunch(m, checked.params, ctx);
}

const gang = { nodeRank: 1, addresses: ['head.example', 'member.example'], masterPort: 29_500 };

test('a torchrun recipe on 2 nodes × 4 GPUs renders the static rendezvous and tells every member its place', () => {
  const m = manifests.get('bert-pretrain')!;
  const launch = render(m, { ...contextFor(m, 4), gang });
  expect(launch.command.slice(4, 11)).toEqual([
    'torchrun',
    '--nnodes=2',
    '--node_rank=1',
    '--master_addr=head.example',
    '--master_port=29500',
    '--nproc_per_node',
    '4',
  ]);
  expect(launch.env).toMatchObject({
    MASTER_ADDR: 'head.example',
    MASTER_PORT: '29500',
    NNODES: '2',
    NODE_RANK: '1',
    NPROC_PER_NODE: '4',
    WORLD_SIZE: '8',
    BERTH_NODE_ADDRS: 'head.example,member.example',
  });
  // Each member's container has a name of its own; the head keeps the attempt's.
  expect(launch.name).toBe(`berth-${contextFor(m, 4).jobId}-a1-n1`);
  expect(render(m, { ...contextFor(m, 4), gang: { ...gang, nodeRank: 0 } }).name).toBe(
    `berth-${contextFor(m, 4).jobId}-a1`,
  );
});

test('one process per node runs without a launcher, told its rank; the DLE launcher renders the rendezvous', () => {
  // Debian 12's torch 1.13 cannot run torchrun on Python 3.11 (Std.from_str answers None), and one process needs
  // no launcher: it joins env:// from RANK and WORLD_SIZE.
  const m = manifests.get('bert-pretrain')!;
  const cpu = render(m, { ...contextFor(m, 0), gpus: 'none', gpuCount: 0, cpu: true, gang });
  expect(cpu.command.slice(0, 3)).toEqual(['python3', '-m', 'berth_bert']);
  expect(cpu.env).toMatchObject({ RANK: '1', LOCAL_RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: 'head.example' });
  const dle = manifests.get('dle-bert-pretrain')!;
  const launch = render(dle, { ...contextFor(dle, 8), gang });
  expect(launch.command).toEqual(
    expect.arrayContaining(['torch.distributed.launch', '--nnodes=2', '--node_rank=1', '--nproc_per_node=8']),
  );
  expect(launch.env.RANK).toBeUndefined();
});
