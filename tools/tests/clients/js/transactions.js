// kafkajs transactions (issue 13) against a real sluice broker, driven by
// tools/tests/clients/test_kafkajs.py. Prints one JSON line of what it observed; the test
// asserts on it. Exits 0 when the scenario ran to its end, 1 otherwise (an error or the
// deadline; the JSON then carries "error").
//
// Usage: node transactions.js <host:port> <scenario> [deadline_ms]
//   commit-abort  9 transactions of 10 records on the 3-partition topic js-txn, every third
//                 (1, 4, 7) aborted after its records were written, the others committed; then
//                 a read_committed and a read_uncommitted consumer read the topic to its end.
//                 {"written": {partition: [[offset, value], ...]}, "committed": {...},
//                  "read_committed": {...}, "read_uncommitted": {...}}
//   send-offsets  reads the 10 records of js-in (read_committed, group js-ctp) and transforms
//                 them into js-out in transactions that also send the group's offset:
//                 4 aborted, 10 committed, 7 aborted, then one more committed transaction
//                 without offsets. {"inputs": [...], "offsets": {step: committed offset}, ...}
//   fencing       a second producer with the same transactionalId fences the first while its
//                 transaction is open. {"fenced_error": {name, type, code, message}, ...}
'use strict';

const { Kafka, logLevel } = require('kafkajs');

const [broker, scenario, deadlineArg] = process.argv.slice(2);
const deadlineMs = Number(deadlineArg || 60000);
if (!broker || !scenario) {
  console.error('usage: node transactions.js <host:port> <commit-abort|send-offsets|fencing> [deadline_ms]');
  process.exit(2);
}

const kafka = new Kafka({
  clientId: 'sluice-kafkajs-txn-test',
  brokers: [broker],
  logLevel: logLevel.NOTHING,
  connectionTimeout: 3000,
  retry: { retries: 5 },
});

const result = { scenario };
const clients = [];

const watchdog = setTimeout(() => {
  result.error = `deadline of ${deadlineMs} ms passed`;
  console.log(JSON.stringify(result));
  process.exit(1);
}, deadlineMs);

function transactionalProducer(transactionalId) {
  const producer = kafka.producer({ transactionalId, maxInFlightRequests: 1, idempotent: true });
  clients.push(producer);
  return producer;
}

function describe(error) {
  return {
    name: error && error.name,
    type: error && error.type,
    code: error && error.code,
    retriable: error && error.retriable,
    message: String(error && error.message),
  };
}

// Reads `topic` from the beginning with a fresh group until every partition delivered the
// sentinel record written at its end (after all transactions ended), so everything before
// it was delivered too. Returns {partition: [[offset, value], ...]} without the sentinels.
async function readToSentinels(topic, partitions, sentinel, readUncommitted) {
  const consumer = kafka.consumer({
    groupId: `reader-${readUncommitted ? 'uncommitted' : 'committed'}-${topic}-${Date.now()}`,
    readUncommitted,
  });
  clients.push(consumer);
  const seen = {};
  for (let p = 0; p < partitions; p++) seen[p] = [];
  const done = new Set();
  let resolveAll;
  const all = new Promise((resolve) => { resolveAll = resolve; });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      const value = message.value.toString();
      if (value === sentinel) {
        done.add(partition);
        if (done.size === partitions) resolveAll();
      } else {
        seen[partition].push([Number(message.offset), value]);
      }
    },
  });
  await all;
  await consumer.disconnect();
  return seen;
}

async function writeSentinels(topic, partitions, sentinel) {
  const producer = kafka.producer();
  clients.push(producer);
  await producer.connect();
  for (let partition = 0; partition < partitions; partition++) {
    await producer.send({ topic, acks: -1, messages: [{ partition, value: sentinel }] });
  }
  await producer.disconnect();
}

async function commitAbort() {
  const topic = 'js-txn';
  const partitions = 3;
  const producer = transactionalProducer('js-aborter');
  await producer.connect();
  const written = {};
  const committed = {};
  for (let p = 0; p < partitions; p++) {
    written[p] = [];
    committed[p] = [];
  }
  for (let t = 0; t < 9; t++) {
    const transaction = await producer.transaction();
    const values = [];
    for (let i = 0; i < 10; i++) values.push(`${t}-${i}`);
    // One send per record, so that each record's partition and offset are known; each is
    // acknowledged (written) before the transaction ends.
    const records = [];
    for (let i = 0; i < values.length; i++) {
      const [meta] = await transaction.send({ topic, acks: -1, messages: [{ key: `${i}`, value: values[i] }] });
      if (meta.errorCode !== 0) throw new Error(`send answered ${JSON.stringify(meta)}`);
      records.push([meta.partition, Number(meta.baseOffset), values[i]]);
    }
    const abort = t % 3 === 1;
    if (abort) await transaction.abort();
    else await transaction.commit();
    for (const [partition, offset, value] of records) {
      written[partition].push([offset, value]);
      if (!abort) committed[partition].push([offset, value]);
    }
  }
  await producer.disconnect();
  result.written = written;
  result.committed = committed;
  const sentinel = `end-${Date.now()}`;
  await writeSentinels(topic, partitions, sentinel);
  result.read_committed = await readToSentinels(topic, partitions, sentinel, false);
  result.read_uncommitted = await readToSentinels(topic, partitions, sentinel, true);
}

async function sendOffsets() {
  const groupId = 'js-ctp';
  const admin = kafka.admin();
  clients.push(admin);
  await admin.connect();
  const committedOffset = async () => {
    const [entry] = await admin.fetchOffsets({ groupId, topics: ['js-in'] });
    return Number(entry.partitions.find((p) => p.partition === 0).offset);
  };

  // The transform's input, read by a read_committed member of the group that commits nothing.
  const consumer = kafka.consumer({ groupId, readUncommitted: false });
  clients.push(consumer);
  const inputs = [];
  let resolveAll;
  const all = new Promise((resolve) => { resolveAll = resolve; });
  await consumer.connect();
  await consumer.subscribe({ topics: ['js-in'], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ message }) => {
      inputs.push([Number(message.offset), message.value.toString()]);
      if (inputs.length >= 10) resolveAll();
    },
  });
  await all;
  await consumer.disconnect();
  result.inputs = inputs;
  result.offsets = { before: await committedOffset() };

  const producer = transactionalProducer('js-ctp-offsets');
  await producer.connect();
  const transform = async (values, offset, commit) => {
    const transaction = await producer.transaction();
    if (values.length) await transaction.send({ topic: 'js-out', acks: -1, messages: values.map((value) => ({ value })) });
    if (offset !== null) {
      await transaction.sendOffsets({
        consumerGroupId: groupId,
        topics: [{ topic: 'js-in', partitions: [{ partition: 0, offset: String(offset) }] }],
      });
    }
    if (commit) await transaction.commit();
    else await transaction.abort();
  };
  const transformed = inputs.map(([, value]) => value.toUpperCase());

  await transform(transformed.slice(0, 4), 4, false);
  result.offsets.after_first_abort = await committedOffset();
  await transform(transformed, 10, true);
  // The markers follow EndTxn's answer: wait (bounded) for the commit to show.
  const deadline = Date.now() + 10000;
  const polled = [];
  let offset = await committedOffset();
  while (offset !== 10 && Date.now() < deadline) {
    polled.push(offset);
    await new Promise((resolve) => setTimeout(resolve, 100));
    offset = await committedOffset();
  }
  result.offsets.after_commit = offset;
  result.offsets.polled_before_commit_showed = [...new Set(polled)];
  await transform(transformed.slice(0, 7), 7, false);
  result.offsets.after_second_abort = await committedOffset();
  // A transaction adds its partition only once the one before it is complete (its markers
  // written), so after this one the abort above is final.
  await transform(['after'], null, true);
  result.offsets.after_next_commit = await committedOffset();
  await producer.disconnect();
  await admin.disconnect();
}

async function fencing() {
  const topic = 'js-fenced';
  const older = transactionalProducer('js-shared');
  const newer = transactionalProducer('js-shared');
  await older.connect();
  const olderTransaction = await older.transaction();
  await olderTransaction.send({ topic, acks: -1, messages: [{ value: 'from the older instance' }] });
  // The newer instance's InitProducerId bumps the epoch and aborts the older's transaction.
  await newer.connect();
  const newerTransaction = await newer.transaction();
  await newerTransaction.send({ topic, acks: -1, messages: [{ value: 'from the newer instance' }] });
  await newerTransaction.commit();
  try {
    await olderTransaction.commit();
    result.fenced_error = null;
  } catch (error) {
    result.fenced_error = describe(error);
  }
  await newer.disconnect();
  await older.disconnect();
}

const scenarios = { 'commit-abort': commitAbort, 'send-offsets': sendOffsets, fencing };

async function main() {
  if (!scenarios[scenario]) throw new Error(`unknown scenario ${scenario}`);
  await scenarios[scenario]();
}

main().then(
  () => {
    clearTimeout(watchdog);
    console.log(JSON.stringify(result));
    process.exit(0);
  },
  async (error) => {
    clearTimeout(watchdog);
    result.error = describe(error);
    result.error.stack = String(error && error.stack);
    console.log(JSON.stringify(result));
    await Promise.allSettled(clients.map((client) => client.disconnect()));
    process.exit(1);
  },
);
