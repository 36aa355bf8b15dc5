import { Demuxer } from './demux.js';

const frame = (type: number, text: string) => {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
};

test('frames are told apart by stream and reassembled from any chunking', () => {
  const all = Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n'), frame(1, '')]);
  for (let cut = 0; cut <= all.length; cut++) {
    const d = new Demuxer();
    const frames = [...d.push(all.subarray(0, cut)), ...d.push(all.subarray(cut))];
    expect(frames.map((f) => [f.stream, f.payload.toString()])).toEqual([
      ['stdout', 'out\n'],
      ['stderr', 'err\n'],
      ['stdout', ''],
    ]);
  }
});
