import { BerthError } from '@berth/contracts';
import { checkImage, repositoryOf } from './image-policy.js';

const policy = { allow: ['nvcr.io/nvidia/**', 'docker.io/berth/*', '127.0.0.1:*/**'], requireDigest: false };
const digest = `@sha256:${'a'.repeat(64)}`;

function refusal(ref: string, p = policy): string | undefined {
  try {
    checkImage(p, ref);
    return undefined;
  } catch (err) {
    if (err instanceof BerthError) return err.code;
    throw err;
  }
}

describe('image allowlist', () => {
  it('names Docker Hub images in full and drops tags and digests', () => {
    expect(repositoryOf('ubuntu')).toBe('docker.io/library/ubuntu');
    expect(repositoryOf('berth/fixture:dev')).toBe('docker.io/berth/fixture');
    expect(repositoryOf(`nvcr.io/nvidia/pytorch:25.01-py3${digest}`)).toBe('nvcr.io/nvidia/pytorch');
    expect(repositoryOf('localhost:5000/x/y:1')).toBe('localhost:5000/x/y');
  });

  it('lets in what a pattern matches and nothing else', () => {
    expect(refusal('nvcr.io/nvidia/pytorch:25.01-py3')).toBeUndefined();
    expect(refusal('nvcr.io/nvidia/tensorrt/sub:1')).toBeUndefined();
    expect(refusal('berth/fixture:dev')).toBeUndefined();
    expect(refusal('127.0.0.1:5000/team/img:1')).toBeUndefined();
    expect(refusal('berth/a/b:1')).toBe('IMAGE_NOT_ALLOWED'); // * is one part
    expect(refusal('nvcr.io/nvidiaX/pytorch:1')).toBe('IMAGE_NOT_ALLOWED');
    expect(refusal('evil.io/nvcr.io/nvidia/pytorch:1')).toBe('IMAGE_NOT_ALLOWED');
    expect(refusal('ubuntu:24.04')).toBe('IMAGE_NOT_ALLOWED');
  });

  it('can demand a digest', () => {
    const pinned = { ...policy, requireDigest: true };
    expect(refusal('nvcr.io/nvidia/pytorch:25.01-py3', pinned)).toBe('IMAGE_NOT_ALLOWED');
    expect(refusal(`nvcr.io/nvidia/pytorch:25.01-py3${digest}`, pinned)).toBeUndefined();
  });

  it('remembers what a policy let through for that policy only, and never a refusal', () => {
    const strict = { allow: ['nvcr.io/nvidia/**'], requireDigest: false };
    for (let i = 0; i < 3; i++) {
      expect(refusal('berth/fixture:dev')).toBeUndefined();
      expect(refusal('berth/fixture:dev', strict)).toBe('IMAGE_NOT_ALLOWED');
      expect(refusal('ubuntu:24.04')).toBe('IMAGE_NOT_ALLOWED');
    }
    // Past the limit the remembered set starts over; the answers stay the same.
    for (let i = 0; i < 1100; i++) expect(refusal(`nvcr.io/nvidia/img${i}:1`)).toBeUndefined();
    expect(refusal('berth/fixture:dev')).toBeUndefined();
    expect(refusal('berth/a/b:1')).toBe('IMAGE_NOT_ALLOWED');
  });
});
