// generate.mjs - the official openai client, unchanged, streaming from amuse's generators
// (run by tests/cli_generate_serve.sh): completions.create with stream and include_usage, the
// streamed text equal to the unstreamed text for the same seed, and chat.completions.create
// streamed. Prints "ok ..." / "FAIL ..." lines; exits 1 on any failure.
// usage: node generate.mjs BASE_URL KEY MODEL
import OpenAI from "openai";

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60000 });
let failed = 0;
const ok = (name) => console.log(`ok ${name}`);
const fail = (name, why) => {
  console.log(`FAIL ${name}: ${why}`);
  failed++;
};

try {
  const whole = await client.completions.create({ model, prompt: "twinkle", max_tokens: 24, seed: 11 });
  const stream = await client.completions.create({
    model, prompt: "twinkle", max_tokens: 24, seed: 11, stream: true,
    stream_options: { include_usage: true },
  });
  let text = "", chunks = 0, usage = null, finish = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
    chunks++;
  }
  if (chunks >= 24 && text === whole.choices[0].text && text.length > 0)
    ok(`completions stream: ${chunks} chunks, same text as unstreamed (${JSON.stringify(text)})`);
  else fail("completions stream", `${chunks} chunks, ${JSON.stringify(text)} vs ${JSON.stringify(whole.choices[0].text)}`);
  if (usage && usage.completion_tokens === 24 && usage.total_tokens === usage.prompt_tokens + 24 && finish === "length")
    ok(`completions stream usage ${JSON.stringify(usage)}, finish_reason ${finish}`);
  else fail("completions stream usage", `${JSON.stringify(usage)} finish ${finish}`);

  const chat = await client.chat.completions.create({
    model, messages: [{ role: "user", content: "how i wonder" }], max_tokens: 12, seed: 5, stream: true,
  });
  let reply = "", role = null;
  for await (const chunk of chat) {
    for (const c of chunk.choices) {
      if (c.delta.role) role = c.delta.role;
      if (c.delta.content) reply += c.delta.content;
    }
  }
  if (role === "assistant" && reply.length > 0) ok(`chat stream: ${JSON.stringify(reply)}`);
  else fail("chat stream", `role ${role}, reply ${JSON.stringify(reply)}`);

  try {
    await client.completions.create({ model, prompt: "twinkle", top_p: 1.5 });
    fail("bad top_p", "accepted");
  } catch (e) {
    if (e instanceof OpenAI.BadRequestError && /top_p/.test(e.message)) ok(`bad top_p: BadRequestError (${e.message})`);
    else fail("bad top_p", `${e}`);
  }
} catch (e) {
  fail("client", `${e}`);
}
process.exit(failed ? 1 : 0);
