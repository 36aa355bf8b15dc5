// Every recipe in ngc-manifests/ loads, and renders for its defaults and every boundary value, with only flags the
// target program really accepts: the trainer's own argparse, and NVIDIA's DLE flag lists.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadManifests } from './load.js';
import { validateParams, type ParamValue } from './params.js';
import { renderLaunch, type RenderContext } from './render.js';
import type { Manifest } from './schema.js';
import { baseParams, contextFor, dleArgparseDir, payloadDir, recipesDir } from './testing/fixtures.js';

const manifests = loadManifests(recipesDir);
const all = [...manifests.values()];

/** Each recipe's param sets: defaults, then each min/max, each enum value, each bool. */
function variants(m: Manifest): Record<string, unknown>[] {
  const base = baseParams(m);
  const out: Record<string, unknown>[] = [base];
  for (const [name, p] of Object.entries(m.parameters)) {
    const values: ParamValue[] = [];
    if (p.type === 'int' || p.type === 'number') {
      if (p.min !== undefined) values.push(p.min);
      if (p.max !== undefined) values.push(p.max);
    }
    if (p.type === 'enum') values.push(...p.values);
    if (p.type === 'bool') values.push(true, false);
    for (const v of values) out.push({ ...base, [name]: v });
  }
  return out;
}

function render(m: Manifest, params: Record<string, unknown>, ctx: RenderContext) {
  const result = validateParams(m, params);
  if (!result.ok) throw new Error(`${m.id} ${JSON.stringify(params)}: ${JSON.stringify(result.issues)}`);
  return renderLaunch(m, result.params, ctx);
}

/** Every command of a recipe: all variants, on its default GPU count and, where it has one, on several GPUs. */
function commands(m: Manifest): string[][] {
  const gpuCounts = new Set([m.resources.gpus.default, Math.min(m.resources.gpus.max, 2)]);
  return variants(m).flatMap((params) => [...gpuCounts].map((n) => render(m, params, contextFor(m, n)).command));
}

const expectedIds = [
  'bert-pretrain',
  'bert-finetune-squad',
  'bert-finetune-classify',
  'bert-finetune-ner',
  'bert-export-onnx',
  'dle-bert-pretrain',
  'dle-bert-squad',
  'dle-bert-glue',
  'tensorrt-build',
  'tensorrt-perf',
  'custom',
];

describe('ngc-manifests/', () => {
  it('holds every recipe, one per file', () => {
    expect([...manifests.keys()].sort()).toEqual([...expectedIds].sort());
    expect(readdirSync(recipesDir).filter((f) => f.endsWith('.yaml'))).toHaveLength(expectedIds.length);
  });

  it.each(all.map((m) => [m.id, m] as const))('%s renders for its defaults and boundary values', (_id, m) => {
    for (const params of variants(m)) {
      const launch = render(m, params, contextFor(m, m.resources.gpus.default));
      expect(launch.resultsDir).toBe(contextFor(m, 0).resultsDir);
      expect(launch.command.length).toBeGreaterThan(0);
      expect(launch.command.every((t) => typeof t === 'string' && !t.includes('{{'))).toBe(true);
      expect(launch.name).toBe('berth-job_abcdefghijklmnopqrst-a1');
      expect(launch.shmSizeBytes).toBeGreaterThan(0);
      expect(launch.mounts.find((x) => x.containerPath === '/results')).toEqual({
        hostPath: contextFor(m, 0).resultsDir,
        containerPath: '/results',
        readOnly: false,
      });
    }
  });
});

describe('first-party recipes', () => {
  const firstParty = all.filter((m) => 'gpu' in m.image && m.image.gpu.ref === 'berth/bert:25.01');

  it('are the five trainer tasks, each with the offline CPU image', () => {
    expect(firstParty.map((m) => m.id).sort()).toEqual(
      [
        'bert-export-onnx',
        'bert-finetune-classify',
        'bert-finetune-ner',
        'bert-finetune-squad',
        'bert-pretrain',
      ].sort(),
    );
    for (const m of firstParty) {
      const launch = render(m, {}, contextFor(m, 0, { cpu: true }));
      expect(launch.image).toBe('berth/bert-cpu:dev');
      expect(launch.gpus).toBe('none');
      expect(launch.command.slice(0, 3)).toEqual(['python3', '-m', 'berth_bert']);
    }
  });

  it("render only arguments the trainer's argparse accepts", () => {
    const argvs: string[][] = [];
    for (const m of firstParty) {
      for (const command of commands(m)) {
        const at = command.indexOf('berth_bert');
        expect(command[at - 1]).toBe('-m');
        argvs.push(command.slice(at + 1));
      }
    }
    // One interpreter parses every rendered command with the trainer's real parser (no training runs).
    const script = [
      'import json, sys, io, contextlib',
      'from berth_bert.__main__ import parser',
      'p = parser()',
      'bad = []',
      'for argv in json.load(sys.stdin):',
      '    err = io.StringIO()',
      '    try:',
      '        with contextlib.redirect_stderr(err):',
      '            p.parse_args(argv)',
      '    except SystemExit:',
      '        bad.append([argv, err.getvalue()])',
      'print(json.dumps(bad))',
    ].join('\n');
    const out = execFileSync('/usr/bin/python3', ['-c', script], {
      cwd: payloadDir,
      input: JSON.stringify(argvs),
      encoding: 'utf8',
    });
    expect(argvs.length).toBeGreaterThan(100);
    expect(JSON.parse(out)).toEqual([]);
  });

  it('give one torchrun process per GPU', () => {
    const m = manifests.get('bert-finetune-squad')!;
    const launch = render(m, {}, contextFor(m, 3));
    // The launcher runs behind a shell that turns its exit after a SIGTERM into 75 (launcher-sigterm.test.ts).
    expect(launch.command.slice(0, 2)).toEqual(['sh', '-c']);
    expect(launch.command.slice(3, 10)).toEqual([
      'berth-launch',
      'torchrun',
      '--nproc_per_node',
      '3',
      '-m',
      'berth_bert',
      'squad',
    ]);
    expect(launch.gpus).toEqual(['0', '1', '2']);
    const one = render(m, {}, contextFor(m, 1));
    expect(one.command.slice(0, 4)).toEqual(['python3', '-m', 'berth_bert', 'squad']);
    const whole = render(m, {}, { ...contextFor(m, 1), gpus: 'all', gpuCount: 4 });
    expect(whole.command.slice(4, 7)).toEqual(['torchrun', '--nproc_per_node', '4']);
  });

  it('pretrain phase 1 trains at 128 tokens and phase 2 at 512, unless the length is set', () => {
    const m = manifests.get('bert-pretrain')!;
    const seq = (params: Record<string, unknown>) => {
      const c = render(m, params, contextFor(m, 1)).command;
      return c[c.indexOf('--max-seq-length') + 1];
    };
    expect(seq({})).toBe('128');
    expect(seq({ phase: 1 })).toBe('128');
    expect(seq({ phase: 2 })).toBe('512');
    expect(seq({ phase: 2, max_seq_length: 256 })).toBe('256');
  });
});

/** `--flag` names (and `-x` short ones) from an argparse listing in test/fixtures/dle-argparse (copied from NVIDIA's scripts' --help). */
function dleFlags(file: string): Set<string> {
  const flags = new Set<string>();
  for (const line of readFileSync(join(dleArgparseDir, file), 'utf8').split('\n')) {
    const m = /^(-\S+)\s/.exec(line);
    if (m) for (const f of m[1]!.split('/')) flags.add(f);
  }
  return flags;
}

describe('NVIDIA DLE recipes', () => {
  const scripts: Record<string, string> = {
    'run_pretraining.py': 'argparse-run_pretraining.txt',
    'run_squad.py': 'argparse-run_squad.txt',
    'run_glue.py': 'argparse-run_glue.txt',
  };
  const dle = all.filter((m) => m.id.startsWith('dle-'));

  it.each(dle.map((m) => [m.id, m] as const))('%s renders only flags its script declares', (_id, m) => {
    for (const command of commands(m)) {
      const at = command.findIndex((t) => t.endsWith('.py'));
      const script = command[at]!.split('/').pop()!;
      const flags = dleFlags(scripts[script]!);
      // torch.distributed.launch adds --local_rank, which the scripts declare (torchrun's --local-rank they don't).
      expect(flags.has('--local_rank')).toBe(true);
      expect(command).not.toContain('torchrun');
      const used = command
        .slice(at + 1)
        .filter((t) => /^--?[A-Za-z]/.test(t))
        .map((t) => t.split('=')[0]!);
      expect(used.filter((f) => !flags.has(f))).toEqual([]);
    }
  });

  it('launch one process per GPU through torch.distributed.launch', () => {
    const m = manifests.get('dle-bert-squad')!;
    const launch = render(m, {}, contextFor(m, 8));
    expect(launch.command.slice(4, 9)).toEqual([
      'python',
      '-m',
      'torch.distributed.launch',
      '--nproc_per_node=8',
      '/workspace/bert/run_squad.py',
    ]);
  });

  it('judge success by the final summary metric, not only the exit code', () => {
    for (const m of dle) expect(m.success.requireMetric?.length).toBeGreaterThan(0);
  });

  it('pretraining phase 2 resumes from phase 1 at sequence length 512', () => {
    const m = manifests.get('dle-bert-pretrain')!;
    const c = render(m, { phase: 2, init_checkpoint: 'ckpt_7038.pt' }, contextFor(m, 8)).command;
    expect(c).toEqual(
      expect.arrayContaining(['--phase2', '--resume_from_checkpoint', '--init_checkpoint=/init/ckpt_7038.pt']),
    );
    expect(c[c.indexOf('--max_seq_length') + 1]).toBe('512');
    expect(c[c.indexOf('--max_predictions_per_seq') + 1]).toBe('80');
  });
});

describe('TensorRT recipes', () => {
  it('build an engine with explicit shapes and precision flags', () => {
    const m = manifests.get('tensorrt-build')!;
    const c = render(m, { bf16: true, int8: true, max_batch: 128 }, contextFor(m, 1)).command;
    expect(c[0]).toBe('trtexec');
    expect(c).toEqual(
      expect.arrayContaining([
        '--onnx=/init/model.onnx',
        '--saveEngine=/results/model.engine',
        '--fp16',
        '--bf16',
        '--int8',
      ]),
    );
    expect(c.find((t) => t.startsWith('--maxShapes='))).toBe(
      '--maxShapes=input_ids:128x384,attention_mask:128x384,token_type_ids:128x384',
    );
    expect(render(m, { fp16: false }, contextFor(m, 1)).command).not.toContain('--fp16');
  });

  it("measure throughput with a regex rule that yields sentences_per_second from trtexec's output", () => {
    const m = manifests.get('tensorrt-perf')!;
    expect(render(m, {}, contextFor(m, 1)).command[1]).toBe('--loadEngine=/init/model.engine');
    const rule = m.metrics.find((r) => r.kind === 'regex' && 'sentences_per_second' in r.metrics);
    if (rule?.kind !== 'regex') throw new Error('no sentences_per_second rule');
    const line = '[11/26/2026-10:00:00] [I] Throughput: 45.5841 qps';
    const match = new RegExp(rule.pattern).exec(line);
    expect(Number(match?.groups?.[rule.metrics.sentences_per_second ?? ''])).toBeCloseTo(45.5841);
    expect(rule.multiplyBy?.sentences_per_second).toBe('batch');
    expect(m.image).toEqual({ gpu: { ref: 'nvcr.io/nvidia/tensorrt:24.10-py3' } });
  });
});
