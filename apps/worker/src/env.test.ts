import { loadWorkerConfig, loggableConfig } from './env.js';

describe('loggableConfig', () => {
  it('keeps every credential out of the URLs it logs', () => {
    const config = loadWorkerConfig({
      REDIS_URL: 'redis://berth:redis-secret-1@redis.internal:6380/0',
      BERTH_API_URL: 'https://api-secret-2@berth.internal/?access_token=api-secret-3',
      BERTH_API_TOKEN: 'api-secret-4',
      DOCKER_HOST: 'tcp://docker:docker-secret-5@10.0.0.7:2375',
      NGC_API_KEY: 'ngc-secret-6',
      BERTH_GPUS: '0',
    });
    const logged = JSON.stringify(loggableConfig(config));
    expect(logged.match(/[a-z]+-secret-\d/g)).toBeNull();
    // What the line is for is still there: where each URL points.
    expect(loggableConfig(config)).toMatchObject({
      redisUrl: 'redis://berth:[redacted]@redis.internal:6380/0',
      dockerHost: 'tcp://docker:[redacted]@10.0.0.7:2375',
      api: { url: 'https://[redacted]@berth.internal/?access_token=[redacted]', token: '[set]' },
      ngc: { key: '[set]' },
    });
  });
});
