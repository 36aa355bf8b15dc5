import { formatDuration, formatValue, TrainingLog } from './training-log.js';

// DLLogger output as berth's trainer prints it (a pretraining run cut to its first steps and its end).
const raw = [
  'DLLL {"timestamp": "1764700000.0", "datetime": "2025-12-02 18:26:40", "elapsedtime": "0.0", "type": "METADATA", "metric": "step_loss", "metadata": {"unit": null}}',
  'DLLL {"timestamp": "1764700000.0", "datetime": "2025-12-02 18:26:40", "elapsedtime": "0.0", "type": "METADATA", "metric": "e2e_train_time", "metadata": {"unit": "s"}}',
  'DLLL {"timestamp": "1764700000.0", "datetime": "2025-12-02 18:26:40", "elapsedtime": "0.0", "type": "METADATA", "metric": "training_sequences_per_second", "metadata": {"unit": "sequences/s"}}',
  'DLLL {"timestamp": "1764700000.0", "datetime": "2025-12-02 18:26:40", "elapsedtime": "0.0", "type": "METADATA", "metric": "F1", "metadata": {"unit": "%"}}',
  'DLLL {"timestamp": "1764700000.1", "datetime": "2025-12-02 18:26:40", "elapsedtime": "0.1", "type": "LOG", "step": "PARAMETER", "data": {"task": "pretrain", "max_steps": 0, "batch_size": 8, "lr": 0.001}}',
  'berth_bert: 1,204 sequences from /data/corpus.txt',
  'DLLL {"timestamp": "1764700000.2", "datetime": "2025-12-02 18:26:40", "elapsedtime": "0.2", "type": "LOG", "step": "PARAMETER", "data": {"total_steps": 100}}',
  'DLLL {"timestamp": "1764700010.2", "datetime": "2025-12-02 18:26:50", "elapsedtime": "10.2", "type": "LOG", "step": [0, 10], "data": {"step_loss": 7.8125, "average_loss": 8.01, "learning_rate": 0.00067}}',
  'DLLL {"timestamp": "1764700020.2", "datetime": "2025-12-02 18:27:00", "elapsedtime": "20.2", "type": "LOG", "step": [0, 20], "data": {"step_loss": NaN, "average_loss": 7.5, "learning_rate": 0.00061}}',
  'DLLL {"timestamp": "1764700090.2", "datetime": "2025-12-02 18:28:10", "elapsedtime": "90.2", "type": "LOG", "step": [1, 100], "data": {"step_loss": 5.1612, "average_loss": 5.3, "learning_rate": 0.0}}',
  'DLLL {"timestamp": "1764700091.0", "datetime": "2025-12-02 18:28:11", "elapsedtime": "91.0", "type": "LOG", "step": [], "data": {"e2e_train_time": 85.48793468900021, "training_sequences_per_second": 77.0931, "final_loss": 5.1612}}',
  'DLLL not json at all',
];

test('DLLogger records read as one line a step, metadata hidden, results as a block with units', () => {
  const log = new TrainingLog();
  const shown = raw.map((l) => log.line(l)).filter((l) => l !== null);
  expect(shown).toEqual([
    'berth_bert: 1,204 sequences from /data/corpus.txt',
    'step 10/100  loss 7.81  avg loss 8.01  lr 6.7e-4',
    // 10 steps took 10 s: 80 to go.
    'step 20/100  loss NaN  avg loss 7.5  lr 6.1e-4  ETA 1m20s',
    'step 100/100  loss 5.16  avg loss 5.3  lr 0',
    [
      'results:',
      '  train time (end to end)  85.5 s',
      '  training throughput      77.1 seq/s',
      '  final loss               5.16',
    ].join('\n'),
    'DLLL not json at all',
  ]);
});

test('without a total the step stands alone; lines of other programs pass as printed', () => {
  const log = new TrainingLog();
  expect(log.line('DLLL {"type": "LOG", "step": [0, 5], "elapsedtime": "1", "data": {"step_loss": 2}}')).toBe(
    'step 5  loss 2',
  );
  expect(log.line('Epoch 1/3: 100%|██████| 10/10')).toBe('Epoch 1/3: 100%|██████| 10/10');
  expect(log.line('DLLL {"type": "LOG", "step": [], "data": {}}')).toBeNull();
});

test('values and durations are short', () => {
  expect([
    formatValue(5.1612),
    formatValue(0.00067),
    formatValue(77.0931),
    formatValue(12345.6),
    formatValue(3),
  ]).toEqual(['5.16', '6.7e-4', '77.1', '12346', '3']);
  expect([formatDuration(48.2), formatDuration(192), formatDuration(7500)]).toEqual(['48s', '3m12s', '2h05m']);
});
