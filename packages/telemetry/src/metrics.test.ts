import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  MetricLineParser,
  normaliseScore,
  summaryMetricNames,
  type MetricRuleLike,
  type MetricSample,
} from './metrics.js';

const parseAll = (parser: MetricLineParser, lines: readonly string[]) => lines.flatMap((l) => parser.parse(l));
const step = (name: string, value: number, at: number | null, unit?: string): MetricSample =>
  unit === undefined ? { name, value, kind: 'step', step: at } : { name, value, kind: 'step', step: at, unit };
const summary = (name: string, value: number, unit?: string): MetricSample =>
  unit === undefined
    ? { name, value, kind: 'summary', step: null }
    : { name, value, kind: 'summary', step: null, unit };
const parameter = (name: string, value: number): MetricSample => ({ name, value, kind: 'parameter', step: null });

// What berth_bert.dllog.DLLogger writes, byte for byte: produced by the module itself with its clock fixed (TZ=UTC),
// for a SQuAD run whose loss went NaN once. The test below checks dllog.py still writes records this way.
const trainerSquad = [
  'DLLL {"timestamp": "1736942400.2504", "datetime": "2025-01-15 12:00:00.250400", "elapsedtime": "0.0004000663757324219", "type": "METADATA", "metric": "step_loss", "metadata": {"unit": null}}',
  'DLLL {"timestamp": "1736942400.2507", "datetime": "2025-01-15 12:00:00.250700", "elapsedtime": "0.0006999969482421875", "type": "METADATA", "metric": "e2e_train_time", "metadata": {"unit": "s"}}',
  'DLLL {"timestamp": "1736942400.251", "datetime": "2025-01-15 12:00:00.251000", "elapsedtime": "0.0009999275207519531", "type": "METADATA", "metric": "F1", "metadata": {"unit": "%"}}',
  'DLLL {"timestamp": "1736942400.3125", "datetime": "2025-01-15 12:00:00.312500", "elapsedtime": "0.0625", "type": "LOG", "step": "PARAMETER", "data": {"task": "squad", "train_file": "/data/train-v1.1.json", "version_2": false, "doc_stride": 128, "lr": 3e-05, "epochs": 2.0, "max_steps": 0, "precision": "bf16", "cache_dir": null}}',
  'DLLL {"timestamp": "1736942401.5", "datetime": "2025-01-15 12:00:01.500000", "elapsedtime": "1.25", "type": "LOG", "step": [0, 10], "data": {"step_loss": 5.875, "average_loss": 6.112499713897705, "learning_rate": 2.9999999999999997e-06}}',
  'DLLL {"timestamp": "1736942460.125", "datetime": "2025-01-15 12:01:00.125000", "elapsedtime": "59.875", "type": "LOG", "step": [1, 7388], "data": {"step_loss": NaN, "average_loss": 0.9134, "learning_rate": 0.0}}',
  'DLLL {"timestamp": "1736942900.75", "datetime": "2025-01-15 12:08:20.750000", "elapsedtime": "500.5", "type": "LOG", "step": [], "data": {"e2e_train_time": 512.3456, "raw_train_time": 498.75, "training_sequences_per_second": 354.2, "final_loss": 0.8873}}',
  'DLLL {"timestamp": "1736942930.0", "datetime": "2025-01-15 12:08:50", "elapsedtime": "529.75", "type": "LOG", "step": [], "data": {"e2e_inference_time": 29.25, "inference_sequences_per_second": 369.8}}',
  'DLLL {"timestamp": "1736942931.5", "datetime": "2025-01-15 12:08:51.500000", "elapsedtime": "531.25", "type": "LOG", "step": [], "data": {"exact_match": 80.87038789025544, "F1": 88.34257530566376}}',
];

// The trainer's classify task scores as fractions (berth_bert/metrics.py classification_scores).
const trainerClassifyScores =
  'DLLL {"timestamp": "1736943000.5", "datetime": "2025-01-15 12:10:00.500000", "elapsedtime": "600.25", "type": "LOG", "step": [], "data": {"accuracy": 0.8602941176470589, "F1": 0.9003436426116839, "mcc": 0.6614}}';

describe("berth's trainer (payloads/bert/berth_bert/dllog.py)", () => {
  const source = readFileSync(resolve(__dirname, '../../../payloads/bert/berth_bert/dllog.py'), 'utf8');

  it('still writes the records the fixtures copy', () => {
    expect(source).toContain('self.stream.write("DLLL " + json.dumps({**head, **record}) + "\\n")');
    expect(source).toContain(
      'head = {"timestamp": str(now), "datetime": str(datetime.datetime.fromtimestamp(now)),\n                "elapsedtime": str(now - self.start)}',
    );
    expect(source).toContain('self._write({"type": "METADATA", "metric": metric, "metadata": {"unit": unit}})');
    expect(source).toContain('self._write({"type": "LOG", "step": step, "data": data})');
    expect(source).toContain('self.log("PARAMETER", {');
  });

  it('a SQuAD run: parameters, progress with the last list element as step, summaries with units, NaN left out', () => {
    expect(parseAll(new MetricLineParser(), trainerSquad)).toEqual([
      parameter('doc_stride', 128),
      parameter('lr', 3e-5),
      parameter('epochs', 2),
      parameter('max_steps', 0),
      step('step_loss', 5.875, 10),
      step('average_loss', 6.112499713897705, 10),
      step('learning_rate', 2.9999999999999997e-6, 10),
      step('average_loss', 0.9134, 7388),
      step('learning_rate', 0, 7388),
      summary('e2e_train_time', 512.3456, 's'),
      summary('raw_train_time', 498.75),
      summary('training_sequences_per_second', 354.2),
      summary('final_loss', 0.8873),
      summary('e2e_inference_time', 29.25),
      summary('inference_sequences_per_second', 369.8),
      summary('exact_match', 80.87038789025544),
      summary('F1', 88.34257530566376, '%'),
    ]);
  });

  it('every metric the trainer announces a unit for is read, with that unit', () => {
    const units = source.match(/UNITS: dict\[str, str \| None\] = \{([^}]*)\}/)?.[1] ?? '';
    const announced = [...units.matchAll(/"([A-Za-z_0-9]+)": (None|"([^"]*)")/g)];
    expect(announced.length).toBeGreaterThanOrEqual(16);
    const parser = new MetricLineParser();
    for (const [, metric, , unit] of announced) {
      const meta = { type: 'METADATA', metric, metadata: { unit: unit ?? null } };
      expect(parser.parse(`DLLL ${JSON.stringify(meta)}`)).toEqual([]);
    }
    const data = Object.fromEntries(announced.map(([, metric], i) => [metric, i + 0.5]));
    const samples = parser.parse(
      `DLLL {"timestamp": "2", "datetime": "y", "elapsedtime": "1", "type": "LOG", "step": [], "data": ${JSON.stringify(data)}}`,
    );
    expect(samples.map((s) => [s.name, s.unit ?? null])).toEqual(announced.map(([, m, , u]) => [m, u ?? null]));
  });

  it("classification scores are fractions: a recipe rule saying so puts them on berth's 0–100 scale", () => {
    expect(new MetricLineParser().parse(trainerClassifyScores)).toEqual([
      summary('accuracy', 0.8602941176470589),
      summary('F1', 0.9003436426116839),
      summary('mcc', 0.6614),
    ]);
    const classify = new MetricLineParser([{ kind: 'dllogger-json', prefix: 'DLLL ', scores: 'fraction' }]);
    const [accuracy, f1, mcc] = classify.parse(trainerClassifyScores);
    expect(accuracy?.value).toBeCloseTo(86.0294117647059, 10);
    expect(f1?.value).toBeCloseTo(90.03436426116839, 10);
    expect(mcc?.value).toBe(0.6614);
  });
});

describe('DLLogger JSON records', () => {
  const rec = (fields: Record<string, unknown>) =>
    `DLLL ${JSON.stringify({ timestamp: '1570716921.842053', datetime: '2019-10-10 14:15:21.842053', elapsedtime: '5.6', ...fields })}`;

  it.each<[string, string, MetricSample[]]>([
    [
      'PARAMETER keeps numbers, drops strings, booleans, null and lists',
      rec({
        type: 'LOG',
        step: 'PARAMETER',
        data: { SEED: 42, learning_rate: 6e-3, amp: true, Config: ['ns'], x: null },
      }),
      [parameter('SEED', 42), parameter('learning_rate', 0.006)],
    ],
    [
      '[epoch, iteration]',
      rec({ type: 'LOG', step: [0, 100], data: { average_loss: 7.93, step_loss: 7.88, skipped_steps: 2 } }),
      [step('average_loss', 7.93, 100), step('step_loss', 7.88, 100), step('skipped_steps', 2, 100)],
    ],
    [
      'a longer list: its last element',
      rec({ type: 'LOG', step: [0, 25, 5], data: { 'val.loss': 980.1 } }),
      [step('val.loss', 980.1, 5)],
    ],
    ['one element', rec({ type: 'LOG', step: [3], data: { loss: 1 } }), [step('loss', 1, 3)]],
    [
      'a last element that is no number: no step',
      rec({ type: 'LOG', step: [0, 'train'], data: { loss: 1 } }),
      [step('loss', 1, null)],
    ],
    [
      '[] is the end-of-run summary',
      rec({ type: 'LOG', step: [], data: { e2e_train_time: 31140.9, final_loss: 1.371 } }),
      [summary('e2e_train_time', 31140.9), summary('final_loss', 1.371)],
    ],
    ['a METADATA record is no sample', rec({ type: 'METADATA', metric: 'F1', metadata: { unit: '%' } }), []],
    ['a LOG without data', rec({ type: 'LOG', step: [0, 1] }), []],
    ['a LOG without step', rec({ type: 'LOG', data: { loss: 1 } }), []],
    ['a step that is an object', rec({ type: 'LOG', step: { i: 1 }, data: { loss: 1 } }), []],
    ['another type', rec({ type: 'EVENT', step: [], data: { loss: 1 } }), []],
    ['malformed JSON', 'DLLL {"timestamp": "1", "type": "LOG", "step": [], "data": {"F1": 88.1}', []],
    ['the prefix and then no record', 'DLLL not json', []],
    ['the prefix before a JSON object that is no record', 'DLLL {"F1": 88.1}', []],
    ['the prefix before a JSON array', 'DLLL [1, 2, 3]', []],
    ['the prefix alone', 'DLLL ', []],
    ['DLLL without its space', 'DLLL{"type": "LOG", "step": [], "data": {"F1": 1}}', []],
    ['an ordinary log line', 'Iteration:  43%|████▎     | 3021/7038 [12:03<16:02,  4.17it/s]', []],
    [
      'after a progress bar the line was merged with',
      `\rIteration:  99%|█████████▉| 99/100 [00:20<00:00]${rec({ type: 'LOG', step: [], data: { F1: 1 } })}\r\n`,
      [summary('F1', 1)],
    ],
    [
      'after a launcher tag',
      `[1,0]<stdout>:${rec({ type: 'LOG', step: [0, 4], data: { step_loss: 2 } })}`,
      [step('step_loss', 2, 4)],
    ],
    [
      "Python's -Infinity and NaN, also inside strings",
      'DLLL {"type": "LOG", "step": [0, 1], "data": {"a": -Infinity, "b": Infinity, "c": NaN, "note": "NaN Infinity", "d": 1.5}}',
      [step('d', 1.5, 1)],
    ],
  ])('%s', (_, line, expected) => {
    expect(new MetricLineParser().parse(line)).toEqual(expected);
  });

  it('METADATA sets the unit of later samples of its metric; null, "None" and "" mean none', () => {
    const parser = new MetricLineParser();
    const log = (data: Record<string, number>) => parser.parse(rec({ type: 'LOG', step: [], data }));
    const unit = (metric: string, metadata: Record<string, unknown>) =>
      expect(parser.parse(rec({ type: 'METADATA', metric, metadata }))).toEqual([]);

    expect(log({ training_sequences_per_second: 3245.6 })).toEqual([summary('training_sequences_per_second', 3245.6)]);
    unit('training_sequences_per_second', { unit: 'sequences/s' });
    unit('final_loss', { unit: null });
    unit('exact_match', { unit: 'None' });
    unit('e2e_train_time', { unit: 's', format: ':.2f' });
    expect(
      log({ training_sequences_per_second: 3245.6, final_loss: 1.37, exact_match: 84.2, e2e_train_time: 9 }),
    ).toEqual([
      summary('training_sequences_per_second', 3245.6, 'sequences/s'),
      summary('final_loss', 1.37),
      summary('exact_match', 84.2),
      summary('e2e_train_time', 9, 's'),
    ]);
    // Metadata without a unit leaves it, as dllogger's StdOutBackend merges metadata; a later unit replaces it.
    unit('e2e_train_time', { type: 'TIME' });
    expect(log({ e2e_train_time: 9 })).toEqual([summary('e2e_train_time', 9, 's')]);
    unit('e2e_train_time', { unit: '' });
    expect(log({ e2e_train_time: 9 })).toEqual([summary('e2e_train_time', 9)]);
    // Units belong to the stream a parser reads: a second parser knows none of them.
    expect(
      new MetricLineParser().parse(rec({ type: 'LOG', step: [], data: { training_sequences_per_second: 1 } })),
    ).toEqual([summary('training_sequences_per_second', 1)]);
  });

  it('a rule adds another prefix; DLLL stays recognised; rules reading files are left to the caller', () => {
    const parser = new MetricLineParser([
      { kind: 'dllogger-json', prefix: '[metrics] ' },
      { kind: 'dllogger-json', prefix: 'DLLL ', file: '/results/dllogger.json', scores: 'fraction' },
      { kind: 'jsonl', file: '/results/metrics.jsonl' },
    ]);
    expect(parser.parse('[metrics] {"type": "LOG", "step": [1, 2], "data": {"loss": 0.5}}')).toEqual([
      step('loss', 0.5, 2),
    ]);
    expect(parser.parse('DLLL {"type": "LOG", "step": [], "data": {"F1": 0.9}}')).toEqual([summary('F1', 0.9)]);
    expect(parser.parse('{"step": 3, "loss": 1}')).toEqual([]);
  });

  it('an empty prefix reads bare JSON records', () => {
    const parser = new MetricLineParser([{ kind: 'dllogger-json', prefix: '' }]);
    expect(parser.parse('  {"type": "LOG", "step": [0, 7], "data": {"loss": 2}}')).toEqual([step('loss', 2, 7)]);
    expect(parser.parse('{"loss": 2}')).toEqual([]);
  });
});

describe('DLLogger text (StdOutBackend)', () => {
  // NVIDIA's BERT scripts print the step with utils.format_step and summaries with an empty tuple, which that prints
  // as nothing; metrics without metadata print no unit (a trailing space), a unit of None prints as `None`.
  it.each<[string, string, MetricSample[]]>([
    [
      'PARAMETER with a Namespace that is no number',
      `DLL 2021-11-15 10:20:30.123456 - PARAMETER Config : ["Namespace(amp=True, bert_model='bert-large-uncased', learning_rate=2.4e-05, seed=1)"] `,
      [],
    ],
    ['PARAMETER numbers', 'DLL 2021-11-15 10:20:30.234567 - PARAMETER SEED : 1 ', [parameter('SEED', 1)]],
    [
      'several parameters on one line',
      'DLL 2021-11-15 10:20:41.345678 - PARAMETER num_parameters : 335143938  batch_size_per_gpu : 64  train_start : True ',
      [parameter('num_parameters', 335143938), parameter('batch_size_per_gpu', 64)],
    ],
    [
      "format_step's epoch and iteration, several pairs without units",
      'DLL 2021-11-15 11:02:03.456789 - Training Epoch: 0 Training Iteration: 100  average_loss : 7.931640625  step_loss : 7.8828125  learning_rate : 0.0001505655380987  skipped_steps : 0 ',
      [
        step('average_loss', 7.931640625, 100),
        step('step_loss', 7.8828125, 100),
        step('learning_rate', 0.0001505655380987, 100),
        step('skipped_steps', 0, 100),
      ],
    ],
    [
      "format_step's validation iteration is the last element",
      'DLL 2021-11-15 11:02:04 - Training Epoch: 0 Training Iteration: 25 Validation Iteration: 5  val_loss : 980.1 ',
      [step('val_loss', 980.1, 5)],
    ],
    [
      'a unit of None',
      'DLL 2021-11-15 19:36:00.000001 - Training Epoch: 0 Training Iteration: 7038  final_loss : 1.3710681200027466 None',
      [step('final_loss', 1.3710681200027466, 7038)],
    ],
    [
      'the pretraining summary: an empty step, units between pairs',
      'DLL 2021-11-15 19:45:00.000002 -  e2e_train_time : 31140.9 s training_sequences_per_second : 3245.67 sequences/s final_loss : 1.3710681200027466 None raw_train_time : 30885.2 s',
      [
        summary('e2e_train_time', 31140.9, 's'),
        summary('training_sequences_per_second', 3245.67, 'sequences/s'),
        summary('final_loss', 1.3710681200027466),
        summary('raw_train_time', 30885.2, 's'),
      ],
    ],
    [
      'the SQuAD summaries',
      'DLL 2021-11-15 20:11:30.5 -  e2e_inference_time : 61.2 s inference_sequences_per_second : 1768.3 sequences/s',
      [summary('e2e_inference_time', 61.2, 's'), summary('inference_sequences_per_second', 1768.3, 'sequences/s')],
    ],
    [
      'SQuAD scores in percent',
      'DLL 2021-11-15 20:12:00.25 -  exact_match : 84.18164616840113 None F1 : 90.92573412146436 None',
      [summary('exact_match', 84.18164616840113), summary('F1', 90.92573412146436)],
    ],
    [
      "dllogger's default step format: a tuple",
      'DLL 2021-11-15 10:20:30.123456 - (0, 100) average_loss : 5.25  step_loss : 5.125 ',
      [step('average_loss', 5.25, 100), step('step_loss', 5.125, 100)],
    ],
    ['a one-element tuple', 'DLL 2021-11-15 10:20:30.123456 - (4,) loss : 0.5 ', [step('loss', 0.5, 4)]],
    ['a list', 'DLL 2021-11-15 10:20:30.123456 - [1, 200] loss : 0.5 ', [step('loss', 0.5, 200)]],
    [
      'an empty tuple',
      'DLL 2021-11-15 10:20:30.123456 - () e2e_train_time : 12.5 s',
      [summary('e2e_train_time', 12.5, 's')],
    ],
    ['an empty list', 'DLL 2021-11-15 10:20:30.123456 - [] F1 : 88 %', [summary('F1', 88, '%')]],
    [
      'bare space-separated integers',
      'DLL 2021-11-15 10:20:30.123456 - 0 100 average_loss : 5.2 ',
      [step('average_loss', 5.2, 100)],
    ],
    ['no time, one iteration', 'DLL - Training Iteration: 100 step_loss : 4.5 ', [step('step_loss', 4.5, 100)]],
    [
      'a time zone',
      'DLL 2019-10-10 14:15:21.842053+00:00 - (0, 5) train.loss : 8.56640625 ',
      [step('train.loss', 8.56640625, 5)],
    ],
    [
      'exponents, signs, None and nan values',
      'DLL 2021-11-15 10:20:30.123456 - (0, 1) learning_rate : 1e-05  delta : -0.5  best : None None step_loss : nan  x : inf ',
      [step('learning_rate', 1e-5, 1), step('delta', -0.5, 1)],
    ],
    ['a step that is a word', 'DLL 2021-11-15 10:20:30.123456 - TRAIN loss : 1 ', [step('loss', 1, null)]],
    ['no pairs', 'DLL 2021-11-15 10:20:30.123456 - PARAMETER', []],
    ['no name before the first colon', 'DLL 2021-11-15 10:20:30.123456 -  : 5 ', []],
    ['not DLLogger: a word ending in DLL', 'LOADDLL 2021-11-15 10:20:30 - PARAMETER x : 1', []],
    ['not DLLogger: a sentence', 'the DLL was loaded - retrying x : 1', []],
  ])('%s', (_, line, expected) => {
    expect(new MetricLineParser([{ kind: 'dllogger-text' }]).parse(line)).toEqual(expected);
  });

  it('is read only when a rule asks for it', () => {
    expect(new MetricLineParser().parse('DLL 2021-11-15 10:20:30.234567 - PARAMETER SEED : 1 ')).toEqual([]);
  });

  it("NVIDIA's run_glue.py prints accuracy as exact_match and F1 in fractions: scores: fraction makes them percent", () => {
    const parser = new MetricLineParser([{ kind: 'dllogger-text', scores: 'fraction' }]);
    expect(
      parseAll(parser, [
        'DLL 2021-11-15 12:00:00.000001 -  exact_match : 0.8627450980392157 ',
        'DLL 2021-11-15 12:00:00.000002 -  F1 : 0.9013605442176871 ',
        'DLL 2021-11-15 12:00:00.000003 -  e2e_train_time : 101.53474271297455 ',
        'DLL 2021-11-15 12:00:00.000004 -  inference_sequences_per_second : 1519.6 ',
      ]),
    ).toEqual([
      summary('exact_match', 86.2745098039216),
      summary('F1', 90.1360544217687),
      summary('e2e_train_time', 101.53474271297455),
      summary('inference_sequences_per_second', 1519.6),
    ]);
  });
});

describe('JSON lines', () => {
  it.each<[string, string, MetricSample[]]>([
    [
      'step wins over global_step, iteration and epoch, none of which is a metric',
      '{"step": 100, "global_step": 90, "iteration": 12, "epoch": 0.25, "loss": 2.5, "learning_rate": 5e-05}',
      [step('loss', 2.5, 100), step('learning_rate', 5e-5, 100)],
    ],
    ['then global_step', '{"iteration": 12, "global_step": 90, "loss": 2.5}', [step('loss', 2.5, 90)]],
    ['then iteration', '{"iteration": 12, "epoch": 1, "loss": 2.5}', [step('loss', 2.5, 12)]],
    ['then epoch', '{"epoch": 3, "eval_loss": 0.4}', [step('eval_loss', 0.4, 3)]],
    [
      'a step that is no number gives none',
      '{"step": "final", "eval_f1": 88.1, "eval_runtime": 12.5}',
      [summary('eval_f1', 88.1), summary('eval_runtime', 12.5)],
    ],
    ['only numbers at the top level', '{"loss": true, "name": "x", "nested": {"a": 1}, "list": [1], "n": null}', []],
    ['an array', '[1, 2]', []],
    ['not JSON', '{loss: 1}', []],
    ['text', 'loss 1.0', []],
    ['surrounding whitespace', '  {"step": 1, "loss": 1}  ', [step('loss', 1, 1)]],
    [
      'after a progress bar redrawn with carriage returns',
      'Epoch 1:  40%|████      | 4/10\rEpoch 1:  50%|█████     | 5/10\r{"step": 5, "loss": 0.7}\r\n',
      [step('loss', 0.7, 5)],
    ],
  ])('%s', (_, line, expected) => {
    expect(new MetricLineParser([{ kind: 'jsonl' }]).parse(line)).toEqual(expected);
  });

  it('fractions become percent for the score names only', () => {
    const parser = new MetricLineParser([{ kind: 'jsonl', scores: 'fraction' }]);
    expect(parser.parse('{"epoch": 2, "eval_accuracy": 0.91, "eval_f1": 0.875, "eval_loss": 0.31}')).toEqual([
      step('eval_accuracy', 91, 2),
      step('eval_f1', 87.5, 2),
      step('eval_loss', 0.31, 2),
    ]);
  });
});

describe('regex rules', () => {
  const trtexec: MetricRuleLike[] = [
    {
      kind: 'regex',
      pattern: 'Throughput: (?<qps>[0-9]+(?:\\.[0-9]+)?) qps',
      metrics: { sentences_per_second: 'qps', queries_per_second: 'qps' },
      multiplyBy: { sentences_per_second: 'batch' },
    },
    {
      kind: 'regex',
      pattern:
        'Latency: min = [0-9.]+ ms, max = [0-9.]+ ms, mean = (?<mean>[0-9.]+) ms, median = (?<median>[0-9.]+) ms',
      metrics: { latency_mean_ms: 'mean', latency_median_ms: 'median' },
    },
  ];

  it("read trtexec's throughput times the batch parameter, and its latencies", () => {
    const parser = new MetricLineParser(trtexec, { batch: 32, seq_length: 384 });
    expect(parser.parse('[01/15/2025-12:00:00] [I] Throughput: 45.5841 qps')).toEqual([
      summary('sentences_per_second', 1458.6912),
      summary('queries_per_second', 45.5841),
    ]);
    expect(
      parser.parse(
        '[01/15/2025-12:00:00] [I] Latency: min = 21.6 ms, max = 23.9 ms, mean = 21.9383 ms, median = 21.9 ms, percentile(90%) = 22.1 ms',
      ),
    ).toEqual([summary('latency_mean_ms', 21.9383), summary('latency_median_ms', 21.9)]);
    expect(parser.parse('[01/15/2025-12:00:00] [I] GPU Compute Time: min = 21.5 ms')).toEqual([]);
  });

  it('a parameter given as text multiplies too; a missing or non-numeric one leaves the product out', () => {
    const line = 'Throughput: 10 qps';
    expect(new MetricLineParser(trtexec, { batch: '8' }).parse(line)[0]).toEqual(summary('sentences_per_second', 80));
    for (const params of [{}, { batch: 'eight' }, { batch: null }, { batch: Number.NaN }]) {
      expect(new MetricLineParser(trtexec, params).parse(line)).toEqual([summary('queries_per_second', 10)]);
    }
    // Only the job's own parameters: nothing inherited from Object.prototype.
    const proto: MetricRuleLike = {
      kind: 'regex',
      pattern: 'q=(?<q>\\d+)',
      metrics: { x: 'q' },
      multiplyBy: { x: 'constructor' },
    };
    expect(new MetricLineParser([proto], {}).parse('q=3')).toEqual([]);
  });

  it('a group named step gives the step; a group that did not take part gives no sample', () => {
    const parser = new MetricLineParser([
      {
        kind: 'regex',
        pattern: '(?:step (?<step>\\d+): )?loss=(?<loss>[0-9.]+)(?: acc=(?<acc>[0-9.]+))?',
        metrics: { loss: 'loss', accuracy: 'acc' },
        scores: 'fraction',
      },
    ]);
    expect(parser.parse('step 40: loss=0.75 acc=0.5')).toEqual([step('loss', 0.75, 40), step('accuracy', 50, 40)]);
    expect(parser.parse('loss=0.5')).toEqual([summary('loss', 0.5)]);
    expect(parser.parse('loss=.')).toEqual([]);
  });

  it('a pattern that does not compile is refused when the parser is built', () => {
    expect(() => new MetricLineParser([{ kind: 'regex', pattern: '(?<x>[', metrics: { x: 'x' } }])).toThrow(
      SyntaxError,
    );
  });
});

describe('normaliseScore', () => {
  it.each<[string, number, 'percent' | 'fraction', number]>([
    ['F1', 0.9, 'fraction', 90],
    ['f1', 0.85, 'fraction', 85],
    ['exact_match', 0.8627450980392157, 'fraction', 86.2745098039216],
    ['accuracy', 1, 'fraction', 100],
    ['ACC', 0.5, 'fraction', 50],
    ['eval_accuracy', 0.25, 'fraction', 25],
    ['eval_f1', 0.125, 'fraction', 12.5],
    ['F1', 88.3, 'percent', 88.3],
    ['mcc', 0.66, 'fraction', 0.66],
    ['final_loss', 0.5, 'fraction', 0.5],
    ['f1_score', 0.5, 'fraction', 0.5],
  ])('%s %d (%s) → %d', (name, value, scale, expected) => {
    expect(normaliseScore(name, value, scale)).toBe(expected);
  });

  it('parameters are settings, not scores', () => {
    const parser = new MetricLineParser([{ kind: 'dllogger-json', prefix: 'DLLL ', scores: 'fraction' }]);
    expect(parser.parse('DLLL {"type": "LOG", "step": "PARAMETER", "data": {"accuracy": 0.5}}')).toEqual([
      parameter('accuracy', 0.5),
    ]);
  });
});

test('the summary names are the final figures of the BERT recipes and trtexec', () => {
  expect(summaryMetricNames).toEqual(
    expect.arrayContaining([
      'final_loss',
      'F1',
      'exact_match',
      'accuracy',
      'training_sequences_per_second',
      'inference_sequences_per_second',
      'e2e_train_time',
      'e2e_inference_time',
      'raw_train_time',
      'sentences_per_second',
    ]),
  );
  expect(new Set(summaryMetricNames).size).toBe(summaryMetricNames.length);
});

describe('never throws', () => {
  const every: MetricRuleLike[] = [
    { kind: 'dllogger-json', prefix: 'DLLL ' },
    { kind: 'dllogger-json', prefix: '' },
    { kind: 'dllogger-text', scores: 'fraction' },
    { kind: 'jsonl' },
    {
      kind: 'regex',
      pattern: '(?<step>\\d+)?.*?(?<v>-?[0-9.e]+)',
      metrics: { v: 'v', F1: 'v' },
      multiplyBy: { v: 'k' },
    },
  ];
  const fragments = [
    'DLLL ',
    'DLL ',
    'DLL 2021-11-15 10:20:30.123456 - ',
    ' - ',
    ' : ',
    ':',
    'PARAMETER',
    '()',
    '[]',
    '(0, 1)',
    '{',
    '}',
    '[',
    ']',
    '"',
    ',',
    '"type": "LOG"',
    '"type": "METADATA"',
    '"step": ',
    '"data": ',
    '"metric": "F1"',
    '"metadata": {"unit": null}',
    '"unit": "None"',
    'NaN',
    '-Infinity',
    '1e-05',
    '-0.5',
    'None',
    'nan',
    '\r',
    '\n',
    '\\',
    ' ',
    'F1',
    'step',
    'constructor',
    '__proto__',
  ];
  const lines = fc.oneof(
    fc.string({ unit: 'binary' }),
    fc.array(fc.constantFrom(...fragments), { maxLength: 40 }).map((parts) => parts.join('')),
  );

  it('on arbitrary text and near-records, and every sample it gives is a finite number', () => {
    const parser = new MetricLineParser(every, { k: 2 });
    fc.assert(
      fc.property(fc.array(lines, { maxLength: 8 }), (batch) => {
        for (const line of batch) {
          const samples = parser.parse(line);
          expect(Array.isArray(samples)).toBe(true);
          for (const s of samples) {
            expect(Number.isFinite(s.value)).toBe(true);
            expect(s.step === null || Number.isFinite(s.step)).toBe(true);
            expect(['step', 'summary', 'parameter']).toContain(s.kind);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('on any JSON value behind the prefix', () => {
    const parser = new MetricLineParser(every, { k: 2 });
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (step, data) => {
        for (const type of ['LOG', 'METADATA']) {
          const record = JSON.stringify({ type, step, data, metric: 'x', metadata: data });
          expect(() => parser.parse(`DLLL ${record}`)).not.toThrow();
          expect(() => parser.parse(record)).not.toThrow();
        }
      }),
      { numRuns: 1000 },
    );
  });
});
