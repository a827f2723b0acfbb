// OpenAI's official Node client (package.json here) against the stand-in,
// driven by demo/llm-server/tests/openai_client.rs, so the stand-in stays
// faithful to what a real client sends and accepts.
//
//   node client.mjs <base URL> <api key> <model>
//
// The package is loaded from $CALLBOARD_OPENAI_NODE_MODULES when set (ESM
// ignores NODE_PATH), else resolved normally. Makes (a) a plain completion,
// (b) a streamed one with usage, (c) one with a wrong key, and prints one
// JSON line: {"plain": {..}, "stream": {..}, "wrong_key": {..}}.

import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

async function loadOpenAI() {
  const dir = process.env.CALLBOARD_OPENAI_NODE_MODULES;
  const module = dir
    ? await import(pathToFileURL(path.join(dir, 'openai', 'index.mjs')).href)
    : await import('openai');
  return module.default;
}

const [baseURL, apiKey, model] = process.argv.slice(2);
if (!baseURL || !apiKey || !model) {
  process.stderr.write('usage: node client.mjs <base URL> <api key> <model>\n');
  process.exit(2);
}

const OpenAI = await loadOpenAI();
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20_000 });
const messages = [
  { role: 'system', content: 'Use the sources. [1] The billing runbook. [2] The owners file.' },
  { role: 'user', content: 'Who owns billing? [2]' },
];

const completion = await client.chat.completions.create({ model, messages, temperature: 0 });
const plain = {
  id: completion.id,
  object: completion.object,
  model: completion.model,
  role: completion.choices[0].message.role,
  content: completion.choices[0].message.content,
  finish_reason: completion.choices[0].finish_reason,
  usage: completion.usage,
};

const stream = await client.chat.completions.create({
  model,
  messages,
  stream: true,
  stream_options: { include_usage: true },
  max_completion_tokens: 4,
});
const streamed = { content: '', chunks: 0, role: null, finish_reason: null, usage: null };
for await (const chunk of stream) {
  streamed.chunks += 1;
  if (chunk.usage) streamed.usage = chunk.usage;
  const choice = chunk.choices[0];
  if (!choice) continue;
  if (choice.delta.role) streamed.role = choice.delta.role;
  if (choice.delta.content) streamed.content += choice.delta.content;
  if (choice.finish_reason) streamed.finish_reason = choice.finish_reason;
}

let wrongKey = null;
try {
  await new OpenAI({ baseURL, apiKey: 'sk-not-the-key', maxRetries: 0 }).chat.completions.create({
    model,
    messages,
  });
} catch (e) {
  wrongKey = {
    name: e.constructor.name,
    status: e.status,
    code: e.code,
    type: e.type,
    message: e.error?.message ?? null,
  };
}

process.stdout.write(`${JSON.stringify({ plain, stream: streamed, wrong_key: wrongKey })}\n`);
