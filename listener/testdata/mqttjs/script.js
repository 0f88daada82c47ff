// MQTT.js peer for listener/interop_mqttjs_test.go.
//
//   node script.js URL [CA_FILE]
//
// Connects to URL (ws:// or wss://; with CA_FILE the server certificate
// must verify against it), subscribes to tern/js/echo, publishes to it and
// waits for its own message back, then publishes "hello from mqtt.js" to
// tern/js/out for the Go-side subscriber and exits 0. Any error, or no
// echo within 10 s, exits 1.
'use strict';
const fs = require('fs');
const mqtt = require('mqtt');

const [url, caFile] = process.argv.slice(2);
if (!url) {
  console.error('usage: node script.js URL [CA_FILE]');
  process.exit(2);
}

const fail = (what) => {
  console.error('mqtt.js:', what);
  process.exit(1);
};
setTimeout(() => fail('timed out'), 10000).unref();

const opts = {
  protocolVersion: 4,
  clientId: 'mqttjs-' + process.pid,
  reconnectPeriod: 0,
  connectTimeout: 5000,
};
if (caFile) {
  opts.ca = fs.readFileSync(caFile);
  opts.rejectUnauthorized = true;
}

const client = mqtt.connect(url, opts);
client.on('error', (err) => fail(err.message));
client.on('close', () => {
  if (!done) fail('connection closed early');
});
let done = false;

client.on('connect', () => {
  client.subscribe('tern/js/echo', { qos: 1 }, (err) => {
    if (err) return fail('subscribe: ' + err.message);
    client.publish('tern/js/echo', 'echo', { qos: 1 }, (err) => {
      if (err) fail('publish: ' + err.message);
    });
  });
});

client.on('message', (topic, payload) => {
  if (topic !== 'tern/js/echo' || payload.toString() !== 'echo') {
    return fail(`unexpected message ${topic} ${payload}`);
  }
  client.publish('tern/js/out', 'hello from mqtt.js', { qos: 1 }, (err) => {
    if (err) return fail('publish: ' + err.message);
    done = true;
    client.end(false, () => {
      console.log('ok');
      process.exit(0);
    });
  });
});
