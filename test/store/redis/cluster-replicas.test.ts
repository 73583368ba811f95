import { clusterReplicas } from '../../../src/store/redis/durability';

describe('clusterReplicas', () => {
  test('lists the replicas of a CLUSTER NODES reply, masters left out, failed or address-less ones as not reachable', () => {
    const text = [
      'd951c2cd 127.0.0.1:45871@55871 slave f8010459 0 1796052682053 1 connected',
      'c7746cdc 127.0.0.1:41487@51487 master - 0 1796052682666 2 connected 5461-10922',
      '16380 127.0.0.1:41917@51917 myself,slave 1d8ae2e4 0 1796052682000 3 connected',
      '470c801f 127.0.0.1:46285@56285 slave,fail c7746cdc 1796052681000 1796052682053 2 disconnected',
      'aa11 :0@0 slave,noaddr c7746cdc 0 0 2 disconnected',
      'bb22 [::1]:7001@17001,replica.example replica c7746cdc 0 0 2 connected',
      '',
    ].join('\n');
    expect(clusterReplicas(text)).toEqual({
      reachable: [
        { host: '127.0.0.1', port: 45871 },
        { host: '127.0.0.1', port: 41917 },
        { host: '::1', port: 7001 },
      ],
      unreachable: ['127.0.0.1:46285', ':0'],
    });
  });
});
