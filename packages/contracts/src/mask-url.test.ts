import { maskUrl, redactDebugLine } from './mask-url.js';

describe('maskUrl', () => {
  it('masks the password of a URL and keeps its user, host, port and path', () => {
    expect(maskUrl('redis://berth:s3cr3t@redis.internal:6380/2')).toBe(
      'redis://berth:[redacted]@redis.internal:6380/2',
    );
    expect(maskUrl('rediss://:s3cr3t@10.0.0.5:6379')).toBe('rediss://:[redacted]@10.0.0.5:6379');
    // An unencoded @ in the password: the host is after the last one, as URL parsers read it.
    expect(maskUrl('redis://u:p@ss@host:1')).toBe('redis://u:[redacted]@host:1');
  });

  it('masks a lone user name, which is how a token rides in a URL', () => {
    expect(maskUrl('https://ghp_abc123@api.example.com/v1')).toBe('https://[redacted]@api.example.com/v1');
  });

  it('masks token and signature query values, in absolute URLs and request paths', () => {
    expect(maskUrl('/v1/jobs/j/logs?follow=true&sig=tok.123.mac')).toBe('/v1/jobs/j/logs?follow=true&sig=[redacted]');
    expect(maskUrl('/v1/jobs?access_token=abc&limit=2')).toBe('/v1/jobs?access_token=[redacted]&limit=2');
    expect(maskUrl('https://s3.example/b/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=ff&x=1')).toBe(
      'https://s3.example/b/k?X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted]&x=1',
    );
    expect(maskUrl('http://h/?api_key=1#frag')).toBe('http://h/?api_key=[redacted]#frag');
  });

  it('leaves URLs without credentials as they are', () => {
    for (const url of ['redis://127.0.0.1:6379', 'http://127.0.0.1:8080/v1/jobs?state=running&limit=20', 'unix:///x'])
      expect(maskUrl(url)).toBe(url);
  });

  it('masks every URL in a line of text', () => {
    expect(maskUrl('connect redis://a:b@h:1 then http://t@h2/?token=z done')).toBe(
      'connect redis://a:[redacted]@h:1 then http://[redacted]@h2/?token=[redacted] done',
    );
  });
});

describe('redactDebugLine', () => {
  it('masks the HELLO and AUTH arguments ioredis prints, whatever the password holds', () => {
    expect(
      redactDebugLine(
        "2026-12-02T12:47:40.233Z ioredis:redis write command[127.0.0.1:6405 (berth-api)]: 0 -> hello([ '3', 'AUTH', 'u', 'p)w' ])",
      ),
    ).toBe('2026-12-02T12:47:40.233Z ioredis:redis write command[127.0.0.1:6405 (berth-api)]: 0 -> hello([redacted])');
    expect(redactDebugLine("ioredis:redis queue command[h:1]: 0 -> auth([ 'pw' ])\nnext line")).toBe(
      'ioredis:redis queue command[h:1]: 0 -> auth([redacted])\nnext line',
    );
    // Other commands keep their arguments: the debug output stays useful.
    expect(redactDebugLine("write command[h:1]: 0 -> hmget([ 'k', 'json' ])")).toBe(
      "write command[h:1]: 0 -> hmget([ 'k', 'json' ])",
    );
  });

  it("masks docker-modem's X-Registry-Auth header and every URL in the line", () => {
    expect(redactDebugLine("modem Sending: { headers: { 'X-Registry-Auth': 'eyJ1c2VyIjoi' }, path: '/x' }")).toBe(
      "modem Sending: { headers: { 'X-Registry-Auth': '[redacted]' }, path: '/x' }",
    );
    expect(redactDebugLine('connecting to redis://u:pw@h:1')).toBe('connecting to redis://u:[redacted]@h:1');
  });
});
