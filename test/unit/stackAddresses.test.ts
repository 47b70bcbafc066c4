/** The stack's fixed addresses, derived from the network's gateway (the spec's .200/.201/.202). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseSubnet, stackAddresses } from '../../src/core/stack/addresses';

test("the spec's example: gateway 192.168.215.1 puts Envoy at .200 and CoreDNS at .201", () => {
  assert.deepEqual(stackAddresses('192.168.215.0/24', '192.168.215.1'), {
    subnet: '192.168.215.0/24',
    gateway: '192.168.215.1',
    envoy: '192.168.215.200',
    coredns: '192.168.215.201',
    controlplane: '192.168.215.202',
  });
});

test("Docker's usual /16 user networks work", () => {
  const a = stackAddresses('172.18.0.0/16', '172.18.0.1');
  assert.ok(!('error' in a));
  assert.equal(a.envoy, '172.18.0.200');
});

test('a network too small to hold the addresses is refused with the reason', () => {
  const a = stackAddresses('10.0.0.0/25', '10.0.0.1');
  assert.ok('error' in a);
  assert.match(a.error, /envoy's address 10\.0\.0\.200 .* not a host address of 10\.0\.0\.0\/25/);
});

test('IPv6 or malformed networks are refused', () => {
  assert.ok('error' in stackAddresses('fd00::/64', 'fd00::1'));
  assert.ok('error' in stackAddresses('10.0.0.0/33', '10.0.0.1'));
});

test('the subnet chosen for the network avoids every subnet in use', () => {
  assert.deepEqual(chooseSubnet([]), { subnet: '192.168.215.0/24', gateway: '192.168.215.1' });
  assert.deepEqual(chooseSubnet(['192.168.215.0/24', '192.168.216.7/32']), { subnet: '192.168.217.0/24', gateway: '192.168.217.1' });
  assert.deepEqual(chooseSubnet(['192.168.0.0/16']), { subnet: '10.215.0.0/24', gateway: '10.215.0.1' });
  assert.equal(chooseSubnet(['0.0.0.0/0']), undefined);
});
