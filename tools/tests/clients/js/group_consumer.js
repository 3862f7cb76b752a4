// kafkajs against a real sluice broker: produces N records to a topic, then one consumer
// group member joins, consumes all N, commits and disconnects. Prints one JSON line:
// {"join_ms": <consumer.run() start to GROUP_JOIN>, "consumed": <records, any run's>,
//  "distinct": <this run's records>, "committed": {partition: offset committed}, ...}.
// Run again with the same group, it resumes from the commits: it consumes only its own N.
// Usage: node group_consumer.js <host:port> <topic> <group> <count> [deadline_ms]
// Exits by itself: 0 when all N were consumed and committed, 1 otherwise (deadline hit).
'use strict';

const { Kafka, Partitioners, logLevel } = require('kafkajs');

const [broker, topic, groupId, countArg, deadlineArg] = process.argv.slice(2);
const count = Number(countArg);
const deadlineMs = Number(deadlineArg || 60000);
if (!broker || !topic || !groupId || !(count > 0)) {
  console.error('usage: node group_consumer.js <host:port> <topic> <group> <count> [deadline_ms]');
  process.exit(2);
}

const kafka = new Kafka({
  clientId: 'sluice-kafkajs-test',
  brokers: [broker],
  logLevel: logLevel.WARN,
  connectionTimeout: 3000,
  retry: { retries: 5 },
});

const result = { join_ms: null, consumed: 0, distinct: 0, member_partitions: [], committed: {} };
let producer;
let consumer;

// Bounded: whatever happens, report what we have and exit.
const watchdog = setTimeout(() => {
  result.error = `deadline of ${deadlineMs} ms passed`;
  console.log(JSON.stringify(result));
  process.exit(1);
}, deadlineMs);

async function main() {
  producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const messages = [];
  // Values unique to this run, so that records of earlier runs are told apart.
  const tag = `${process.pid}-${Date.now()}`;
  for (let i = 0; i < count; i++) messages.push({ key: `${i}`, value: `${tag}-${i}` });
  for (let i = 0; i < messages.length; i += 100) {
    await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 100) });
  }
  await producer.disconnect();

  consumer = kafka.consumer({ groupId });
  const values = new Set(); // this run's records seen
  const next = {}; // partition -> offset after the last record handled
  let resolveAll;
  const allConsumed = new Promise((resolve) => { resolveAll = resolve; });
  let runStarted;
  let resolveJoin;
  const joined = new Promise((resolve) => { resolveJoin = resolve; });
  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    if (result.join_ms === null) result.join_ms = Date.now() - runStarted;
    result.member_partitions = event.payload.memberAssignment[topic] || [];
    result.group_protocol = event.payload.groupProtocol;
    resolveJoin();
  });
  consumer.on(consumer.events.COMMIT_OFFSETS, (event) => {
    for (const t of event.payload.topics) {
      if (t.topic !== topic) continue;
      for (const p of t.partitions) result.committed[p.partition] = Number(p.offset);
    }
  });
  consumer.on(consumer.events.CRASH, (event) => {
    result.crash = String(event.payload.error);
  });

  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  runStarted = Date.now();
  await consumer.run({
    autoCommit: true,
    eachMessage: async ({ partition, message }) => {
      result.consumed += 1;
      next[partition] = Math.max(next[partition] || 0, Number(message.offset) + 1);
      const value = message.value.toString();
      if (value.startsWith(`${tag}-`)) values.add(value);
      if (values.size >= count) resolveAll();
    },
  });
  await joined;
  await allConsumed;
  result.distinct = values.size;
  // kafkajs autocommits the resolved offsets after each batch, but that may still be in
  // flight and disconnect() does not commit; commit the positions explicitly, then leave.
  await consumer.commitOffsets(Object.entries(next).map(([partition, offset]) => (
    { topic, partition: Number(partition), offset: String(offset) })));
  await consumer.disconnect();
}

main().then(
  () => {
    clearTimeout(watchdog);
    console.log(JSON.stringify(result));
    process.exit(result.distinct === count ? 0 : 1);
  },
  async (error) => {
    clearTimeout(watchdog);
    result.error = String(error && error.stack ? error.stack : error);
    console.log(JSON.stringify(result));
    process.exit(1);
  },
);
